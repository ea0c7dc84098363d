// backplane/detail/name_pattern.hpp - "prefix{placeholder}suffix" names:
// channels ("chat:room:{room}"), stream and inbox keys, presence keys.
//
// A pattern is split once, so that naming is an append into a buffer the
// caller reuses, and a name made by a pattern can be matched back to its value.
#ifndef BACKPLANE_DETAIL_NAME_PATTERN_HPP
#define BACKPLANE_DETAIL_NAME_PATTERN_HPP

#include <stdexcept>
#include <string>
#include <string_view>

namespace backplane::detail {

class name_pattern {
public:
    /// @throws std::invalid_argument if `pattern` lacks `placeholder`.
    name_pattern(std::string_view pattern, std::string_view placeholder)
    {
        const auto at = pattern.find(placeholder);
        if (at == std::string_view::npos)
            throw std::invalid_argument("backplane: pattern '" + std::string(pattern) + "' lacks "
                                        + std::string(placeholder));
        prefix_ = pattern.substr(0, at);
        suffix_ = pattern.substr(at + placeholder.size());
    }

    /// The name of `value`, into `out` (replaced).
    void name(std::string_view value, std::string& out) const
    {
        out.assign(prefix_).append(value).append(suffix_);
    }

    /// The name of `value`.
    std::string name(std::string_view value) const
    {
        std::string out;
        out.reserve(prefix_.size() + value.size() + suffix_.size());
        name(value, out);
        return out;
    }

    /// The value of a name made by this pattern; false if `name` is not one
    /// (the value of a name is never empty, as no room or user name is).
    bool match(std::string_view name, std::string_view& value) const noexcept
    {
        if (name.size() <= prefix_.size() + suffix_.size() || name.substr(0, prefix_.size()) != prefix_
            || name.substr(name.size() - suffix_.size()) != suffix_)
            return false;
        value = name.substr(prefix_.size(), name.size() - prefix_.size() - suffix_.size());
        return true;
    }

    const std::string& prefix() const noexcept { return prefix_; }
    const std::string& suffix() const noexcept { return suffix_; }

private:
    std::string prefix_, suffix_;
};

} // namespace backplane::detail

#endif
