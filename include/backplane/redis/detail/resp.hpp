// backplane/redis/detail/resp.hpp - RESP through hiredis: commands formatted
// with redisFormatCommandArgv, replies parsed with a redisReader. No I/O.
#ifndef BACKPLANE_REDIS_DETAIL_RESP_HPP
#define BACKPLANE_REDIS_DETAIL_RESP_HPP

#include <backplane/error.hpp>
#include <backplane/redis/reply.hpp>

#include <hiredis/hiredis.h>

#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace backplane::redis::detail {

/// Appends the RESP encoding of `args` to `out`.
/// @returns false if hiredis could not format it (out of memory).
template <class Range>
bool append_command(std::string& out, const Range& args)
{
    /* Commands of up to 8 arguments (all of the hot path) format without a
       vector allocation. */
    constexpr std::size_t small = 8;
    std::array<const char*, small> small_ptrs;
    std::array<std::size_t, small> small_lens;
    std::vector<const char*> big_ptrs;
    std::vector<std::size_t> big_lens;
    const std::size_t n = static_cast<std::size_t>(std::end(args) - std::begin(args));
    const char** ptrs = small_ptrs.data();
    std::size_t* lens = small_lens.data();
    if (n > small) {
        big_ptrs.resize(n);
        big_lens.resize(n);
        ptrs = big_ptrs.data();
        lens = big_lens.data();
    }
    std::size_t i = 0;
    for (const auto& a : args) {
        const std::string_view v(a);
        ptrs[i] = v.data();
        lens[i] = v.size();
        ++i;
    }
    char* formatted = nullptr;
    const int len = redisFormatCommandArgv(&formatted, static_cast<int>(n), ptrs, lens);
    if (len < 0)
        return false;
    out.append(formatted, static_cast<std::size_t>(len));
    redisFreeCommand(formatted);
    return true;
}

inline bool append_command(std::string& out, std::initializer_list<std::string_view> args)
{
    return append_command<std::initializer_list<std::string_view>>(out, args);
}

/// Copies a hiredis reply into a `reply`.
inline void convert(const redisReply& in, reply& out)
{
    switch (in.type) {
    case REDIS_REPLY_STRING: out.type = reply::kind::string; break;
    case REDIS_REPLY_ARRAY: out.type = reply::kind::array; break;
    case REDIS_REPLY_INTEGER: out.type = reply::kind::integer; break;
    case REDIS_REPLY_STATUS: out.type = reply::kind::status; break;
    case REDIS_REPLY_ERROR: out.type = reply::kind::error; break;
    default: out.type = reply::kind::nil; break;
    }
    out.integer = in.type == REDIS_REPLY_INTEGER ? in.integer : 0;
    out.text.clear();
    out.elements.clear();
    if (in.type == REDIS_REPLY_STRING || in.type == REDIS_REPLY_STATUS || in.type == REDIS_REPLY_ERROR)
        out.text.assign(in.str, in.len);
    if (in.type == REDIS_REPLY_ARRAY) {
        out.elements.resize(in.elements);
        for (std::size_t i = 0; i < in.elements; ++i)
            convert(*in.element[i], out.elements[i]);
    }
}

/// A redisReader: bytes in, replies out.
class reader {
public:
    reader() : r_(redisReaderCreate()) {}
    reader(const reader&) = delete;
    reader& operator=(const reader&) = delete;
    ~reader() { redisReaderFree(r_); }

    /// Forgets any partial reply (a new connection starts clean).
    void reset()
    {
        redisReaderFree(r_);
        r_ = redisReaderCreate();
    }

    /// Hands bytes to the parser.
    std::error_code feed(const char* data, std::size_t n)
    {
        if (!r_ || redisReaderFeed(r_, data, n) != REDIS_OK)
            return error::protocol_error;
        return {};
    }

    /// The next complete reply, if any: `*out` is set (to free with
    /// freeReplyObject through the returned holder) or left null.
    std::error_code next(redisReply*& out)
    {
        void* p = nullptr;
        out = nullptr;
        if (redisReaderGetReply(r_, &p) != REDIS_OK)
            return error::protocol_error;
        out = static_cast<redisReply*>(p);
        return {};
    }

private:
    redisReader* r_;
};

/// Frees a hiredis reply at the end of a scope.
struct reply_holder {
    redisReply* p = nullptr;
    reply_holder() = default;
    reply_holder(const reply_holder&) = delete;
    reply_holder& operator=(const reply_holder&) = delete;
    ~reply_holder()
    {
        if (p)
            freeReplyObject(p);
    }
};

/// The bytes of a bulk string element of an array reply, as a view.
inline std::string_view view_of(const redisReply& r) noexcept
{
    return r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS || r.type == REDIS_REPLY_ERROR
               ? std::string_view(r.str, r.len)
               : std::string_view();
}

} // namespace backplane::redis::detail

#endif
