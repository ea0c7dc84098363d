// libFuzzer target for signed tokens (backplane/auth/jwt.hpp). Built with
// -DBACKPLANE_FUZZ=ON and clang:
//
//   CXX=clang++ cmake -S . -B build-fuzz -DBACKPLANE_FUZZ=ON && cmake --build build-fuzz --target fuzz_jwt
//   build-fuzz/tests/fuzz/fuzz_jwt -max_total_time=60 tests/fuzz/corpus/fuzz_jwt
//
// The input is read twice. As a token, unsigned: it must be refused (nobody
// without the key can make one that passes). As the claims of a token that
// is then signed with the key: what the verifier accepts must be what it
// promises (a valid user, an expiry, rooms that are names or patterns of
// names), and what it refuses must be refused with one of its two errors.
#include <backplane/auth/jwt.hpp>

#include <jwt.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace {

const std::string secret = "a fuzzing secret of at least 32 bytes";

backplane::auth::jwt_verifier make_verifier()
{
    backplane::auth::jwt_options o;
    o.key = secret;
    o.audience = "chat";
    return backplane::auth::jwt_verifier(o);
}

// The claims signed with the key; empty if libjwt does not take them.
std::string signed_token(const std::string& claims)
{
    jwt_t* raw = nullptr;
    if (::jwt_new(&raw) != 0)
        return {};
    const std::unique_ptr<jwt_t, void (*)(jwt_t*)> jwt(raw, ::jwt_free);
    if (::jwt_add_grants_json(jwt.get(), claims.c_str()) != 0
        || ::jwt_set_alg(jwt.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
                         static_cast<int>(secret.size())) != 0)
        return {};
    const std::unique_ptr<char, void (*)(void*)> text(::jwt_encode_str(jwt.get()), std::free);
    return text ? std::string(text.get()) : std::string();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static const auto verifier = make_verifier();
    const std::string input(reinterpret_cast<const char*>(data), size);
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'000'000'000));

    backplane::auth::identity id;
    if (!verifier.verify(input, id, now))
        std::abort(); // forged without the key

    if (input.find('\0') != std::string::npos)
        return 0;
    const std::string token = signed_token(input);
    if (token.empty())
        return 0;
    const auto ec = verifier.verify(token, id, now);
    if (ec) {
        if (ec != backplane::error::invalid_token && ec != backplane::error::token_expired)
            std::abort();
        return 0;
    }
    if (backplane::validate_name(id.user) || id.expires + verifier.options().leeway <= now)
        std::abort();
    if (id.every_room && !id.rooms.empty())
        std::abort();
    for (const auto& pattern : id.rooms) {
        std::string probe = pattern;
        for (auto& c : probe)
            if (c == '*')
                c = 'x';
        if (backplane::validate_name(probe) || !backplane::auth::identity::matches(pattern, probe) ||
            !id.may_enter(probe))
            std::abort();
    }
    return 0;
}
