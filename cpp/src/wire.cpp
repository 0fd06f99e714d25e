// Reading and writing the frames of the Unix-socket wire (docs/wire/unix.md §2).
#include "switchboard/wire.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "switchboard/error.hpp"

namespace switchboard::wire {

namespace {

void put_u16(std::string& out, std::uint16_t value) {
    out += static_cast<char>((value >> 8) & 0xFF);
    out += static_cast<char>(value & 0xFF);
}

void put_u32(std::string& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xFF);
}

void put_u64(std::string& out, std::uint64_t value) {
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xFF);
}

std::uint64_t get_be(const std::string& in, std::size_t at, std::size_t bytes) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < bytes; ++i) {
        value = (value << 8) | static_cast<unsigned char>(in[at + i]);
    }
    return value;
}

/// Reads exactly `count` bytes; false on end of stream or error.
bool read_exact(int fd, char* into, std::size_t count) {
    std::size_t done = 0;
    while (done < count) {
        const ssize_t got = ::recv(fd, into + done, count - done, 0);
        if (got > 0) {
            done += static_cast<std::size_t>(got);
        } else if (got < 0 && errno == EINTR) {
            continue;
        } else {
            return false;
        }
    }
    return true;
}

/// Whether `text` is valid UTF-8.
bool is_utf8(const std::string& text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        std::size_t extra = 0;
        if (c < 0x80) {
            extra = 0;
        } else if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
            extra = 1;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2;
        } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
            extra = 3;
        } else {
            return false;
        }
        if (extra > 0 && i + extra >= text.size()) return false;
        for (std::size_t k = 1; k <= extra; ++k) {
            if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
        }
        i += extra + 1;
    }
    return true;
}

}  // namespace

std::string encode(const Frame& frame) {
    const std::size_t length = kHeaderSize + frame.name.size() + frame.payload.size();
    if (frame.name.size() > 0xFFFF || length > kMaxFrame) {
        throw TransportError("frame of " + std::to_string(length) +
                             " bytes exceeds the limit of " + std::to_string(kMaxFrame) +
                             " bytes");
    }
    std::string out;
    out.reserve(4 + length);
    put_u32(out, static_cast<std::uint32_t>(length));
    out += static_cast<char>(frame.kind);
    out += static_cast<char>(frame.code);
    put_u16(out, static_cast<std::uint16_t>(frame.name.size()));
    put_u64(out, frame.id);
    put_u64(out, frame.version);
    out += frame.name;
    out += frame.payload;
    return out;
}

bool write_all(int fd, const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t sent = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (sent > 0) {
            done += static_cast<std::size_t>(sent);
        } else if (sent < 0 && errno == EINTR) {
            continue;
        } else {
            return false;
        }
    }
    return true;
}

ReadResult read_frame(int fd, std::uint32_t limit) {
    ReadResult result;
    std::string prefix(4, '\0');
    if (!read_exact(fd, prefix.data(), 4)) return result;
    const auto length = static_cast<std::uint32_t>(get_be(prefix, 0, 4));
    result.length = length;
    if (length > limit) {
        result.status = ReadResult::Status::TooLong;
        result.problem = "frame of " + std::to_string(length) + " bytes exceeds the limit of " +
                         std::to_string(limit) + " bytes";
        return result;
    }
    std::string body(length, '\0');
    if (!read_exact(fd, body.data(), length)) return result;
    if (length >= 12) result.frame.id = get_be(body, 4, 8);
    if (length < kHeaderSize) {
        result.status = ReadResult::Status::Malformed;
        result.problem = "frame of " + std::to_string(length) + " bytes is shorter than its header";
        return result;
    }
    result.frame.kind = static_cast<std::uint8_t>(body[0]);
    result.frame.code = static_cast<std::uint8_t>(body[1]);
    const auto name_len = static_cast<std::size_t>(get_be(body, 2, 2));
    result.frame.version = get_be(body, 12, 8);
    if (kHeaderSize + name_len > length) {
        result.status = ReadResult::Status::Malformed;
        result.problem = "the name runs past the end of the frame";
        return result;
    }
    result.frame.name = body.substr(kHeaderSize, name_len);
    if (!is_utf8(result.frame.name)) {
        result.status = ReadResult::Status::Malformed;
        result.problem = "the name is not UTF-8";
        return result;
    }
    result.frame.payload = body.substr(kHeaderSize + name_len);
    result.status = ReadResult::Status::Ok;
    return result;
}

}  // namespace switchboard::wire
