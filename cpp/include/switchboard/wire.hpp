// The frames of the Unix-socket wire (docs/wire/unix.md, protocol 1): their kinds, and reading
// and writing them on a POSIX stream socket. Used by `UnixClient` and `UnixServer`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace switchboard::wire {

/// The frame kinds of protocol 1 (docs/wire/unix.md §3).
enum class Kind : std::uint8_t {
    Hello = 0x01,
    Welcome = 0x02,
    Refused = 0x03,
    Call = 0x10,
    Reply = 0x11,
    GetProperty = 0x20,
    SetProperty = 0x21,
    PropertyReply = 0x22,
    Watch = 0x23,
    Unwatch = 0x24,
    PropertyValue = 0x25,
    Subscribe = 0x30,
    Unsubscribe = 0x31,
    Signal = 0x32,
    SendGoal = 0x40,
    CancelGoal = 0x41,
    AttachGoal = 0x42,
    GoalReply = 0x43,
    GoalFeedback = 0x44,
    GoalStatus = 0x45,
    GoalFinished = 0x46,
    Command = 0x50,
    Describe = 0x60,
    Description = 0x61,
    Error = 0x7F,
};

inline constexpr int kProtocol = 1;
inline constexpr std::uint32_t kHeaderSize = 20;
inline constexpr std::uint32_t kMaxFrame = 16U * 1024U * 1024U;
inline constexpr std::uint32_t kMaxHello = 64U * 1024U;

/// One frame: the fields of its header, its name and its payload.
struct Frame {
    std::uint8_t kind = 0;
    std::uint8_t code = 0;
    std::uint64_t id = 0;
    std::uint64_t version = 0;
    std::string name;
    std::string payload;
};

/// Encodes a frame, length prefix included. Throws `TransportError` for one over `kMaxFrame`.
std::string encode(const Frame& frame);

/// Writes all of `bytes` to `fd`. Returns false when the connection is gone.
bool write_all(int fd, const std::string& bytes);

/// What reading a frame gave.
struct ReadResult {
    enum class Status {
        /// `frame` holds a frame.
        Ok,
        /// The peer closed the connection (or it broke).
        Closed,
        /// The frame was longer than the limit; the stream cannot be resynchronised.
        TooLong,
        /// The frame was delimited but malformed; `frame.id` is its id if it had one.
        Malformed,
    };
    Status status = Status::Closed;
    Frame frame;
    std::uint32_t length = 0;
    std::string problem;
};

/// Reads one frame of at most `limit` bytes after the length field, looping over short reads.
ReadResult read_frame(int fd, std::uint32_t limit);

}  // namespace switchboard::wire
