// tests/support/tokens.hpp - signed tokens for the tests, minted with libjwt
// (the library only verifies; signing is the application's login service),
// and the test keys in tests/auth/keys (made for these tests, never for use).
#ifndef BACKPLANE_TESTS_SUPPORT_TOKENS_HPP
#define BACKPLANE_TESTS_SUPPORT_TOKENS_HPP

#include <jwt.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

namespace backplane::test {

/// The HS256 secret the tests share with the servers they start.
inline const std::string hs256_secret = "a test secret of at least 32 bytes, never a real one";

/// The contents of tests/auth/keys/`name` ("rs256.pem", "es256.pub.pem").
inline std::string test_key(const std::string& name)
{
    std::ifstream in(std::string(BACKPLANE_TEST_KEYS_DIR) + "/" + name);
    if (!in)
        throw std::runtime_error("missing test key " + name);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

/// Seconds since the epoch, `from_now` from now: for exp, nbf.
inline long epoch_seconds(std::chrono::seconds from_now = {})
{
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch() + from_now)
            .count());
}

/// A token with the claims `claims_json` ({"sub":"alice","exp":...}),
/// signed with `alg` and `key` (a secret, or a PEM private key).
inline std::string mint(const std::string& claims_json, jwt_alg_t alg = JWT_ALG_HS256,
                        const std::string& key = hs256_secret)
{
    jwt_t* raw = nullptr;
    if (::jwt_new(&raw) != 0)
        throw std::runtime_error("jwt_new");
    const std::unique_ptr<jwt_t, void (*)(jwt_t*)> jwt(raw, ::jwt_free);
    if (::jwt_add_grants_json(jwt.get(), claims_json.c_str()) != 0)
        throw std::runtime_error("jwt_add_grants_json: " + claims_json);
    if (::jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size())) != 0)
        throw std::runtime_error("jwt_set_alg");
    const std::unique_ptr<char, void (*)(void*)> text(::jwt_encode_str(jwt.get()), std::free);
    if (!text)
        throw std::runtime_error("jwt_encode_str");
    return text.get();
}

/// An HS256 token for `user`, valid for `life`.
inline std::string token_for(const std::string& user, std::chrono::seconds life = std::chrono::hours(1))
{
    return mint(R"({"sub":")" + user + R"(","exp":)" + std::to_string(epoch_seconds(life)) + "}");
}

} // namespace backplane::test

#endif
