// The errors the switchboard C++ runtime throws: a remote error (the server said no) kept apart
// from a transport error (the connection broke), a timeout and a decoding error.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace switchboard {

/// The `code` numbers every switchboard transport uses (StingerIPC's `ReturnCode`).
enum class ErrorCode : std::uint8_t {
    Success = 0,
    ClientError = 1,
    ServerError = 2,
    TransportError = 3,
    PayloadError = 4,
    ClientSerializationError = 5,
    ClientDeserializationError = 6,
    ServerSerializationError = 7,
    ServerDeserializationError = 8,
    MethodNotFound = 9,
    Unauthorized = 10,
    Timeout = 11,
    OutOfSync = 12,
    UnknownError = 13,
    NotImplemented = 14,
    ServiceUnavailable = 15,
};

/// Reads a code byte; numbers outside the table read as `UnknownError`.
ErrorCode error_code_from(std::uint8_t code) noexcept;

/// The base of every error the runtime throws.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The connection broke, could not be made, or is not connected.
class TransportError : public Error {
public:
    using Error::Error;
};

/// No answer came within the call's deadline.
class TimeoutError : public Error {
public:
    using Error::Error;
};

/// A value did not have its declared type: `path` names the offending field.
class DecodeError : public Error {
public:
    DecodeError(const std::string& path, const std::string& message)
        : Error(path.empty() ? message : path + ": " + message), path_(path) {}
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

/// The server (or, in a handler, the handler) said no: `(code, name, message, details)`.
///
/// Generated code derives one class from it for each error the interface declares, so callers
/// can catch a declared error by its type, or every refusal as `RemoteError`.
class RemoteError : public Error {
public:
    RemoteError(ErrorCode code, std::string name, const std::string& message,
                std::optional<nlohmann::json> details = std::nullopt)
        : Error(name + ": " + message), code_(code), name_(std::move(name)), message_(message),
          details_(std::move(details)) {}

    [[nodiscard]] ErrorCode code() const noexcept { return code_; }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const std::string& message() const noexcept { return message_; }
    [[nodiscard]] const std::optional<nlohmann::json>& details() const noexcept { return details_; }

    /// A generic application error (code 1, name `ClientError`).
    static RemoteError client_error(const std::string& message) {
        return RemoteError(ErrorCode::ClientError, "ClientError", message);
    }

private:
    ErrorCode code_;
    std::string name_;
    std::string message_;
    std::optional<nlohmann::json> details_;
};

/// The stable names of the errors the runtime itself produces.
namespace error_names {
inline constexpr const char* internal = "Internal";
/// The message of an `Internal` error, the same on every switchboard server.
inline constexpr const char* internal_message = "the server failed while handling the request";
inline constexpr const char* invalid_arguments = "InvalidArguments";
inline constexpr const char* unknown_method = "UnknownMethod";
inline constexpr const char* unknown_property = "UnknownProperty";
inline constexpr const char* read_only = "ReadOnlyProperty";
inline constexpr const char* out_of_sync = "OutOfSync";
inline constexpr const char* protocol_error = "ProtocolError";
}  // namespace error_names

}  // namespace switchboard
