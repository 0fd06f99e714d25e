// The JSON encodings of the interface format's types (docs/interface-format.md, "Types and
// their JSON encoding"): `Codec<T>` encodes a C++ value to JSON and decodes it back, checking
// every value against its declared type and naming the offending field in `DecodeError`.
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "switchboard/error.hpp"

namespace switchboard {

using Json = nlohmann::json;

/// A `datetime`: an instant in UTC with nanosecond resolution.
using DateTime = std::chrono::sys_time<std::chrono::nanoseconds>;
/// A `duration`, which may be negative.
using Duration = std::chrono::nanoseconds;
/// A `binary` value.
using Bytes = std::vector<std::byte>;

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, with as many fraction digits as needed.
std::string format_datetime(DateTime value);
/// Reads a timestamp in UTC (`Z`), with an offset (`+02:00`), or without one (taken as UTC).
std::optional<DateTime> parse_datetime(const std::string& text);
/// An ISO 8601 duration such as `PT1.5S`, `PT0S` or `-PT1S`.
std::string format_duration(Duration value);
/// Reads an ISO 8601 duration with days, hours, minutes and (fractional) seconds.
std::optional<Duration> parse_duration(const std::string& text);
/// Standard base64 with padding.
std::string encode_base64(const Bytes& value);
/// Reads standard base64 with padding; `std::nullopt` for anything else.
std::optional<Bytes> decode_base64(const std::string& text);

/// A value on the heap with value semantics: generated structures hold a member of their own type
/// (directly or through `std::optional`) in a `Box`. A moved-from `Box` may only be assigned to
/// or destroyed.
template <class T>
class Box {
public:
    Box() : value_(std::make_unique<T>()) {}
    Box(T value) : value_(std::make_unique<T>(std::move(value))) {}  // NOLINT: implicit by design
    Box(const Box& other) : value_(std::make_unique<T>(*other.value_)) {}
    Box(Box&& other) noexcept = default;
    Box& operator=(const Box& other) {
        if (this != &other) value_ = std::make_unique<T>(*other.value_);
        return *this;
    }
    Box& operator=(Box&& other) noexcept = default;
    ~Box() = default;

    T& operator*() noexcept { return *value_; }
    const T& operator*() const noexcept { return *value_; }
    T* operator->() noexcept { return value_.get(); }
    const T* operator->() const noexcept { return value_.get(); }
    friend bool operator==(const Box& a, const Box& b) { return *a.value_ == *b.value_; }

private:
    std::unique_ptr<T> value_;
};

/// Encodes and decodes one C++ type; generated code specializes it for enums and structures.
template <class T, class Enable = void>
struct Codec;

/// Encodes `value` to JSON.
template <class T>
Json encode(const T& value) {
    return Codec<T>::encode(value);
}

/// Decodes `data` as a `T`; `path` names the value in errors.
template <class T>
T decode(const Json& data, const std::string& path) {
    return Codec<T>::decode(data, path);
}

namespace detail {
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

inline std::string join_path(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
}
}  // namespace detail

/// Decodes the member `key` of the JSON object `object`; an absent key is `std::nullopt` for an
/// optional value and an error otherwise.
template <class T>
T decode_field(const Json& object, const char* key, const std::string& path) {
    const std::string here = detail::join_path(path, key);
    auto found = object.find(key);
    if (found == object.end()) {
        if constexpr (detail::is_optional<T>::value) {
            return std::nullopt;
        } else {
            throw DecodeError(here, "missing");
        }
    }
    return Codec<T>::decode(*found, here);
}

/// Checks that `data` is a JSON object.
inline void expect_object(const Json& data, const std::string& path) {
    if (!data.is_object()) {
        throw DecodeError(path, "expected an object, got " + std::string(data.type_name()));
    }
}

template <class T>
struct Codec<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
    static Json encode(T value) { return Json(value); }
    static T decode(const Json& data, const std::string& path) {
        if (!data.is_number_integer()) {
            throw DecodeError(path, "expected an integer, got " + std::string(data.type_name()));
        }
        if (data.is_number_unsigned()) {
            auto value = data.get<std::uint64_t>();
            if (value > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
                throw DecodeError(path, std::to_string(value) + " is out of range");
            }
            return static_cast<T>(value);
        }
        auto value = data.get<std::int64_t>();
        if constexpr (std::is_unsigned_v<T>) {
            if (value < 0 || static_cast<std::uint64_t>(value) >
                                 static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
                throw DecodeError(path, std::to_string(value) + " is out of range");
            }
        } else {
            if (value < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
                value > static_cast<std::int64_t>(std::numeric_limits<T>::max())) {
                throw DecodeError(path, std::to_string(value) + " is out of range");
            }
        }
        return static_cast<T>(value);
    }
};

template <class T>
struct Codec<T, std::enable_if_t<std::is_floating_point_v<T>>> {
    static Json encode(T value) {
        if (!std::isfinite(value)) {
            throw DecodeError("", "NaN and the infinities have no JSON form");
        }
        return Json(value);
    }
    static T decode(const Json& data, const std::string& path) {
        if (!data.is_number()) {
            throw DecodeError(path, "expected a number, got " + std::string(data.type_name()));
        }
        const double value = data.get<double>();
        if (!std::isfinite(value) ||
            std::fabs(value) > static_cast<double>(std::numeric_limits<T>::max())) {
            throw DecodeError(path, "number out of range");
        }
        return static_cast<T>(value);
    }
};

template <>
struct Codec<bool> {
    static Json encode(bool value) { return Json(value); }
    static bool decode(const Json& data, const std::string& path) {
        if (!data.is_boolean()) {
            throw DecodeError(path, "expected a boolean, got " + std::string(data.type_name()));
        }
        return data.get<bool>();
    }
};

template <>
struct Codec<std::string> {
    static Json encode(const std::string& value) { return Json(value); }
    static std::string decode(const Json& data, const std::string& path) {
        if (!data.is_string()) {
            throw DecodeError(path, "expected a string, got " + std::string(data.type_name()));
        }
        return data.get<std::string>();
    }
};

template <>
struct Codec<DateTime> {
    static Json encode(DateTime value) { return Json(format_datetime(value)); }
    static DateTime decode(const Json& data, const std::string& path) {
        auto text = Codec<std::string>::decode(data, path);
        auto value = parse_datetime(text);
        if (!value) throw DecodeError(path, "not a timestamp: \"" + text + "\"");
        return *value;
    }
};

template <>
struct Codec<Duration> {
    static Json encode(Duration value) { return Json(format_duration(value)); }
    static Duration decode(const Json& data, const std::string& path) {
        auto text = Codec<std::string>::decode(data, path);
        auto value = parse_duration(text);
        if (!value) throw DecodeError(path, "not an ISO 8601 duration: \"" + text + "\"");
        return *value;
    }
};

template <>
struct Codec<Bytes> {
    static Json encode(const Bytes& value) { return Json(encode_base64(value)); }
    static Bytes decode(const Json& data, const std::string& path) {
        auto text = Codec<std::string>::decode(data, path);
        auto value = decode_base64(text);
        if (!value) throw DecodeError(path, "not standard base64");
        return std::move(*value);
    }
};

template <class T>
struct Codec<Box<T>> {
    static Json encode(const Box<T>& value) { return Codec<T>::encode(*value); }
    static Box<T> decode(const Json& data, const std::string& path) {
        return Box<T>(Codec<T>::decode(data, path));
    }
};

template <class T>
struct Codec<std::optional<T>> {
    static Json encode(const std::optional<T>& value) {
        return value ? Codec<T>::encode(*value) : Json(nullptr);
    }
    static std::optional<T> decode(const Json& data, const std::string& path) {
        if (data.is_null()) return std::nullopt;
        return Codec<T>::decode(data, path);
    }
};

template <class T>
struct Codec<std::vector<T>, std::enable_if_t<!std::is_same_v<T, std::byte>>> {
    static Json encode(const std::vector<T>& value) {
        Json out = Json::array();
        for (const auto& item : value) out.push_back(Codec<T>::encode(item));
        return out;
    }
    static std::vector<T> decode(const Json& data, const std::string& path) {
        if (!data.is_array()) {
            throw DecodeError(path, "expected an array, got " + std::string(data.type_name()));
        }
        std::vector<T> out;
        out.reserve(data.size());
        for (std::size_t i = 0; i < data.size(); ++i) {
            out.push_back(Codec<T>::decode(data[i], path + "[" + std::to_string(i) + "]"));
        }
        return out;
    }
};

template <class T>
struct Codec<std::map<std::string, T>> {
    static Json encode(const std::map<std::string, T>& value) {
        Json out = Json::object();
        for (const auto& [key, item] : value) out[key] = Codec<T>::encode(item);
        return out;
    }
    static std::map<std::string, T> decode(const Json& data, const std::string& path) {
        expect_object(data, path);
        std::map<std::string, T> out;
        for (const auto& [key, item] : data.items()) {
            out.emplace(key, Codec<T>::decode(item, std::string(path).append("[\"").append(key).append("\"]")));
        }
        return out;
    }
};

}  // namespace switchboard
