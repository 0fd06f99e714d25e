// The text encodings of datetimes, durations and binary values (docs/interface-format.md).
#include <array>
#include <cctype>
#include <cstdio>

#include "switchboard/codec.hpp"

namespace switchboard {

namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

/// Appends `fraction` nanoseconds as `.ddd…` without trailing zeros (nothing for zero).
void append_fraction(std::string& out, std::int64_t fraction) {
    if (fraction == 0) return;
    std::array<char, 16> digits{};
    (void)std::snprintf(digits.data(), digits.size(), "%09lld", static_cast<long long>(fraction));
    std::string text(digits.data());
    while (!text.empty() && text.back() == '0') text.pop_back();
    out += '.';
    out += text;
}

/// Reads `count` decimal digits at `pos`.
bool read_digits(const std::string& text, std::size_t& pos, std::size_t count, int& value) {
    if (pos + count > text.size()) return false;
    value = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const char c = text[pos + i];
        if (c < '0' || c > '9') return false;
        value = value * 10 + (c - '0');
    }
    pos += count;
    return true;
}

/// Reads `.ddd…` (1 to 9 digits kept, more digits ignored) as nanoseconds, if present.
bool read_fraction(const std::string& text, std::size_t& pos, std::int64_t& nanos) {
    nanos = 0;
    if (pos >= text.size() || (text[pos] != '.' && text[pos] != ',')) return true;
    ++pos;
    std::size_t count = 0;
    std::int64_t scale = 100000000;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) != 0) {
        if (count < 9) {
            nanos += (text[pos] - '0') * scale;
            scale /= 10;
        }
        ++count;
        ++pos;
    }
    return count > 0;
}

}  // namespace

std::string format_datetime(DateTime value) {
    const auto day = std::chrono::floor<days>(value);
    const std::chrono::year_month_day date{day};
    const std::chrono::hh_mm_ss<nanoseconds> time{value - day};
    std::array<char, 40> buffer{};
    (void)std::snprintf(buffer.data(), buffer.size(), "%04d-%02u-%02uT%02d:%02d:%02d",
                  static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                  static_cast<unsigned>(date.day()), static_cast<int>(time.hours().count()),
                  static_cast<int>(time.minutes().count()),
                  static_cast<int>(time.seconds().count()));
    std::string out(buffer.data());
    append_fraction(out, time.subseconds().count());
    out += 'Z';
    return out;
}

std::optional<DateTime> parse_datetime(const std::string& text) {
    std::size_t pos = 0;
    int year = 0;
    int month = 0;
    int day = 0;
    int hour = 0;
    int minute = 0;
    int second = 0;
    auto expect = [&](char c) {
        if (pos < text.size() && text[pos] == c) {
            ++pos;
            return true;
        }
        return false;
    };
    if (!read_digits(text, pos, 4, year) || !expect('-') || !read_digits(text, pos, 2, month) ||
        !expect('-') || !read_digits(text, pos, 2, day)) {
        return std::nullopt;
    }
    if (!(expect('T') || expect('t') || expect(' '))) return std::nullopt;
    if (!read_digits(text, pos, 2, hour) || !expect(':') || !read_digits(text, pos, 2, minute) ||
        !expect(':') || !read_digits(text, pos, 2, second)) {
        return std::nullopt;
    }
    std::int64_t nanos = 0;
    if (!read_fraction(text, pos, nanos)) return std::nullopt;
    minutes offset{0};
    if (pos < text.size()) {
        if (expect('Z') || expect('z')) {
        } else if (text[pos] == '+' || text[pos] == '-') {
            const int sign = text[pos] == '-' ? -1 : 1;
            ++pos;
            int oh = 0;
            int om = 0;
            if (!read_digits(text, pos, 2, oh)) return std::nullopt;
            expect(':');
            if (!read_digits(text, pos, 2, om)) return std::nullopt;
            offset = minutes{sign * (oh * 60 + om)};
        } else {
            return std::nullopt;
        }
    }
    if (pos != text.size()) return std::nullopt;
    const std::chrono::year_month_day date{std::chrono::year{year},
                                           std::chrono::month{static_cast<unsigned>(month)},
                                           std::chrono::day{static_cast<unsigned>(day)}};
    if (!date.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
    return DateTime{std::chrono::sys_days{date}} + hours{hour} + minutes{minute} +
           seconds{second} + nanoseconds{nanos} - offset;
}

std::string format_duration(Duration value) {
    std::string out;
    // The most negative value has no positive counterpart; it is never a real duration.
    std::int64_t total = value.count();
    if (total < 0) {
        out += '-';
        total = total == std::numeric_limits<std::int64_t>::min()
                    ? std::numeric_limits<std::int64_t>::max()
                    : -total;
    }
    out += "PT";
    out += std::to_string(total / 1000000000);
    append_fraction(out, total % 1000000000);
    out += 'S';
    return out;
}

std::optional<Duration> parse_duration(const std::string& text) {
    std::size_t pos = 0;
    bool negative = false;
    if (pos < text.size() && (text[pos] == '-' || text[pos] == '+')) {
        negative = text[pos] == '-';
        ++pos;
    }
    if (pos >= text.size() || text[pos] != 'P') return std::nullopt;
    ++pos;
    bool in_time = false;
    bool any = false;
    long double total = 0;  // nanoseconds
    while (pos < text.size()) {
        if (text[pos] == 'T') {
            if (in_time) return std::nullopt;
            in_time = true;
            ++pos;
            continue;
        }
        std::size_t start = pos;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) != 0) {
            ++pos;
        }
        if (start == pos) return std::nullopt;
        long double number = std::stold(text.substr(start, pos - start));
        std::int64_t fraction = 0;
        if (!read_fraction(text, pos, fraction)) return std::nullopt;
        if (pos >= text.size()) return std::nullopt;
        const char unit = text[pos++];
        long double scale = 0;
        if (!in_time && unit == 'W') {
            scale = 7 * 86400e9L;
        } else if (!in_time && unit == 'D') {
            scale = 86400e9L;
        } else if (in_time && unit == 'H') {
            scale = 3600e9L;
        } else if (in_time && unit == 'M') {
            scale = 60e9L;
        } else if (in_time && unit == 'S') {
            scale = 1e9L;
        } else {
            return std::nullopt;
        }
        total += number * scale + static_cast<long double>(fraction) * scale / 1e9L;
        any = true;
    }
    if (!any || total > static_cast<long double>(std::numeric_limits<std::int64_t>::max())) {
        return std::nullopt;
    }
    const auto nanos = static_cast<std::int64_t>(total);
    return Duration{negative ? -nanos : nanos};
}

namespace {
constexpr const char* kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string encode_base64(const Bytes& value) {
    std::string out;
    out.reserve((value.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < value.size(); i += 3) {
        const auto n = (std::to_integer<unsigned>(value[i]) << 16) |
                       (std::to_integer<unsigned>(value[i + 1]) << 8) |
                       std::to_integer<unsigned>(value[i + 2]);
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += kAlphabet[(n >> 6) & 63];
        out += kAlphabet[n & 63];
    }
    const std::size_t rest = value.size() - i;
    if (rest == 1) {
        const auto n = std::to_integer<unsigned>(value[i]) << 16;
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += "==";
    } else if (rest == 2) {
        const auto n = (std::to_integer<unsigned>(value[i]) << 16) |
                       (std::to_integer<unsigned>(value[i + 1]) << 8);
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += kAlphabet[(n >> 6) & 63];
        out += '=';
    }
    return out;
}

std::optional<Bytes> decode_base64(const std::string& text) {
    if (text.size() % 4 != 0) return std::nullopt;
    auto index = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    Bytes out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        std::array<int, 4> v{};
        int pads = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const char c = text[i + k];
            if (c == '=' && last && k >= 2) {
                ++pads;
                v[k] = 0;
                continue;
            }
            if (pads > 0) return std::nullopt;
            v[k] = index(c);
            if (v[k] < 0) return std::nullopt;
        }
        const auto n = static_cast<unsigned>((v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3]);
        out.push_back(static_cast<std::byte>((n >> 16) & 0xFF));
        if (pads < 2) out.push_back(static_cast<std::byte>((n >> 8) & 0xFF));
        if (pads < 1) out.push_back(static_cast<std::byte>(n & 0xFF));
    }
    return out;
}

}  // namespace switchboard
