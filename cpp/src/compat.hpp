// Whether a client and a server of two versions of an interface can talk: the classifier of the
// changes from one interface description to another, written from docs/interface-format.md
// ("Compatibility between versions") to decide as the Rust and Python runtimes do, and the check
// that applies it to the two sides of a handshake. Private to the runtime (not installed).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "switchboard/client.hpp"
#include "switchboard/codec.hpp"
#include "switchboard/error.hpp"

namespace switchboard::detail {

/// One difference between two descriptions that matters on the wire.
struct Change {
    /// Where, as dotted file keys: `methods.setTarget.arguments.celsius`.
    std::string path;
    /// `member_removed`, `field_type_changed`, ... (the Rust `ChangeKind` names).
    std::string kind;
    /// What changed, for people.
    std::string message;
    /// Clients of the old description keep working against a server of the new one.
    bool clients_ok = true;
    /// Servers of the old description keep serving clients of the new one.
    bool servers_ok = true;
};

/// Every change from `old_description` to `new_description` (two interface descriptions, the
/// JSON introspection answers with) that matters on the wire, in the order `switchboard diff`
/// lists them. Prose and metadata are safe both ways and are not listed.
std::vector<Change> compare(const Json& old_description, const Json& new_description);

/// The kinds of member a client uses.
enum class MemberKind { Signal, Property, Method, Command, Action };

/// One member of an interface, as a request names it.
struct Member {
    MemberKind kind = MemberKind::Method;
    std::string name;
    friend bool operator==(const Member&, const Member&) = default;
};

/// `methods`, `signals`, ...: the interface file's section for `kind`.
const char* section_of(MemberKind kind);

/// What one side of a handshake says about itself (a HELLO or WELCOME, or MQTT interface info).
// clang-tidy sees nlohmann::json's noexcept special members call its (throwing) invariant
// check; they cannot throw for a valid json value.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct Peer {
    std::string interface;
    std::string version;
    /// `std::nullopt` for a dynamic client, which accepts any server.
    std::optional<std::string> hash;
    /// The interface description; null when the peer sent none.
    Json description;

    /// Reads the JSON document of a HELLO or WELCOME; fields of the wrong type read as absent.
    static Peer from_hello(const Json& hello);
    /// What a generated client says of itself; an unreadable description reads as none.
    static Peer from_identity(const ClientIdentity& identity);
    /// `Thermostat 1.2.0 (sha256:ab12cd34ef56)`, for messages.
    [[nodiscard]] std::string summary() const;
};

/// A client and a server that cannot talk; the message names both and, when the descriptions
/// were compared, the first change that breaks the client.
class Incompatible : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// What a client and a compatible server agreed on: the members the client has and the server
/// lacks, whose every use fails before anything is sent.
///
/// Thread safety: const member functions may be called from any thread at the same time.
class Agreement {
public:
    Agreement() = default;
    Agreement(std::string server, std::vector<Member> lacking)
        : server_(std::move(server)), lacking_(std::move(lacking)) {}

    [[nodiscard]] const std::vector<Member>& lacking() const noexcept { return lacking_; }
    /// Throws the error the server itself answers for an unknown member (`UnknownMethod`, ...,
    /// code 9) when it lacks member `name` of kind `kind`.
    void require(MemberKind kind, const std::string& name) const;
    /// When the server lacks member `name` of kind `kind`, completes `done` with that error
    /// (on the calling thread) and returns true; otherwise returns false.
    [[nodiscard]] bool refuse(MemberKind kind, const std::string& name,
                              const Completion& done) const;

private:
    [[nodiscard]] std::exception_ptr refusal(MemberKind kind, const std::string& name) const;

    std::string server_;
    std::vector<Member> lacking_;
};

/// Decides whether a server that says `server` serves a client that says `client`: the same
/// interface name, and a null or equal hash, or two descriptions of which no change breaks this
/// client except members the server lacks altogether. Throws `Incompatible` otherwise.
Agreement check(const Peer& client, const Peer& server);

}  // namespace switchboard::detail
