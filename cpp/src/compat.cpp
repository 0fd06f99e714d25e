// The classifier of changes between two versions of an interface description and the handshake
// check built on it: a third implementation of docs/interface-format.md ("Compatibility between
// versions"), after the Rust one (`switchboard_idl::diff`) and the Python one
// (`switchboard._compat`); tests/it/evolve.rs checks that all three decide alike, word for word.
#include "compat.hpp"

#include <array>
#include <functional>
#include <map>
#include <set>
#include <utility>

namespace switchboard::detail {

namespace {

/// Which way the values of a list, enum or structure travel.
struct Flows {
    bool to_server = false;
    bool to_client = false;

    [[nodiscard]] Flows with(const Flows& other) const {
        return {to_server || other.to_server, to_client || other.to_client};
    }

    /// `{clients_ok, servers_ok}` for a change whose values decode from an old writer at a new
    /// reader (`old_to_new`) and from a new writer at an old reader (`new_to_old`).
    [[nodiscard]] std::pair<bool, bool> verdicts(bool old_to_new, bool new_to_old) const {
        const bool clients = (!to_server || old_to_new) && (!to_client || new_to_old);
        const bool servers = (!to_server || new_to_old) && (!to_client || old_to_new);
        return {clients, servers};
    }

    friend bool operator==(const Flows&, const Flows&) = default;
};

constexpr Flows kToServer{true, false};
constexpr Flows kToClient{false, true};
constexpr Flows kBothWays{true, true};

/// A member section a client uses: its key, the noun for one member, and its kind.
struct MemberSection {
    const char* key;
    const char* noun;
    MemberKind kind;
};

/// In the order of the file format's sections, the order changes are listed in.
constexpr std::array<MemberSection, 5> kMemberSections{{
    {"signals", "signal", MemberKind::Signal},
    {"properties", "property", MemberKind::Property},
    {"methods", "method", MemberKind::Method},
    {"commands", "command", MemberKind::Command},
    {"actions", "action", MemberKind::Action},
}};

const MemberSection& member_section(MemberKind kind) {
    for (const auto& section : kMemberSections) {
        if (section.kind == kind) return section;
    }
    return kMemberSections[0];
}

/// The objects of the list `object[key]`; anything else reads as an empty list.
std::vector<const Json*> list(const Json& object, const char* key) {
    std::vector<const Json*> out;
    if (!object.is_object()) return out;
    const auto found = object.find(key);
    if (found == object.end() || !found->is_array()) return out;
    for (const auto& item : *found) {
        if (item.is_object()) out.push_back(&item);
    }
    return out;
}

/// `object[key]`, or null.
const Json& at(const Json& object, const char* key) {
    static const Json null;
    if (!object.is_object()) return null;
    const auto found = object.find(key);
    return found == object.end() ? null : *found;
}

/// A JSON value as it reads in a message: a string without quotes, anything else as JSON.
std::string text(const Json& value) {
    return value.is_string() ? value.get<std::string>() : value.dump();
}

std::string name_of(const Json* item) { return text(at(*item, "name")); }

bool is_optional(const Json& type) { return at(type, "kind") == "optional"; }

/// An integer `format`'s signedness and width in bits; `std::nullopt` for an unknown one.
std::optional<std::pair<bool, int>> integer_format(const Json& format) {
    static const std::map<std::string, std::pair<bool, int>> formats{
        {"int8", {true, 8}},    {"int16", {true, 16}},   {"int32", {true, 32}},
        {"int64", {true, 64}},  {"uint8", {false, 8}},   {"uint16", {false, 16}},
        {"uint32", {false, 32}}, {"uint64", {false, 64}},
    };
    if (!format.is_string()) return std::nullopt;
    const auto found = formats.find(format.get<std::string>());
    if (found == formats.end()) return std::nullopt;
    return found->second;
}

/// Whether every value of integer format `src` is one of `dst`.
bool integer_fits(const Json& src, const Json& dst) {
    const auto from = integer_format(src);
    const auto to = integer_format(dst);
    if (!from || !to) return false;
    const auto [from_signed, from_bits] = *from;
    const auto [to_signed, to_bits] = *to;
    if (from_signed == to_signed) return from_bits <= to_bits;
    // Unsigned into signed needs a wider type; signed never fits unsigned.
    return !from_signed && from_bits < to_bits;
}

/// Whether every value a writer of type `writer` sends decodes as type `reader`.
bool fits(const Json& writer, const Json& reader) {
    const Json* src = &writer;
    const Json* dst = &reader;
    // Each turn either decides, or moves both sides (or the reader alone) one type inwards.
    while (true) {
        if (*src == *dst) return true;
        if (!src->is_object() || !dst->is_object()) return false;
        const Json& a = at(*src, "kind");
        const Json& b = at(*dst, "kind");
        if (a == "optional" && b == "optional") {
            src = &at(*src, "inner");
            dst = &at(*dst, "inner");
        } else if (b == "optional") {
            dst = &at(*dst, "inner");
        } else if ((a == "array" && b == "array") || (a == "map" && b == "map")) {
            const char* held = a == "array" ? "item" : "value";
            src = &at(*src, held);
            dst = &at(*dst, held);
        } else if (a == "integer" && b == "integer") {
            return integer_fits(at(*src, "format"), at(*dst, "format"));
        } else if (a == "float" && b == "float") {
            return at(*src, "format") == "float32" && at(*dst, "format") == "float64";
        } else {
            return (a == "date_time" || a == "duration" || a == "binary") && b == "string";
        }
    }
}

/// `integer (int32)`, `optional string`, `array of struct Point`.
std::string describe_type(const Json& type) {
    std::string containers;
    const Json* inner = &type;
    // Each turn names one container and moves inwards, until a type that holds none.
    while (true) {
        if (!inner->is_object()) return containers + "unknown";
        const Json& kind = at(*inner, "kind");
        if (kind == "array") {
            containers += "array of ";
            inner = &at(*inner, "item");
        } else if (kind == "map") {
            containers += "map of ";
            inner = &at(*inner, "value");
        } else if (kind == "optional") {
            containers += "optional ";
            inner = &at(*inner, "inner");
        } else if (kind == "integer" || kind == "float") {
            return containers + text(kind) + " (" + text(at(*inner, "format")) + ")";
        } else if (kind == "date_time") {
            return containers + "datetime";
        } else if (kind == "enum" || kind == "struct") {
            return containers + text(kind) + " " + text(at(*inner, "name"));
        } else {
            return containers + text(kind);
        }
    }
}

Flows property_flows(const Json& property) {
    return at(property, "read_only") == true ? kToClient : kBothWays;
}

/// The flows of every enum and structure of `iface`, keyed `enum:Name` and `struct:Name`.
std::map<std::string, Flows> flows_of(const Json& iface) {
    std::vector<std::pair<std::vector<const Json*>, Flows>> lists;
    for (const Json* m : list(iface, "methods")) {
        lists.emplace_back(list(*m, "arguments"), kToServer);
        lists.emplace_back(list(*m, "returns"), kToClient);
    }
    for (const Json* s : list(iface, "signals")) lists.emplace_back(list(*s, "fields"), kToClient);
    for (const Json* p : list(iface, "properties")) {
        lists.emplace_back(list(*p, "fields"), property_flows(*p));
    }
    for (const Json* c : list(iface, "commands")) {
        lists.emplace_back(list(*c, "arguments"), kToServer);
    }
    for (const Json* a : list(iface, "actions")) {
        lists.emplace_back(list(*a, "goal"), kToServer);
        lists.emplace_back(list(*a, "feedback"), kToClient);
        lists.emplace_back(list(*a, "result"), kToClient);
    }
    for (const Json* e : list(iface, "errors")) lists.emplace_back(list(*e, "fields"), kToClient);

    std::map<std::string, Flows> flows;
    const auto mark = [&flows](const Json* type, const Flows& flow) {
        static const std::map<std::string, const char*> held{
            {"array", "item"}, {"map", "value"}, {"optional", "inner"}};
        while (type->is_object()) {
            const Json& kind = at(*type, "kind");
            const auto inner = kind.is_string() ? held.find(kind.get<std::string>()) : held.end();
            if (inner == held.end()) break;
            type = &at(*type, inner->second);
        }
        const Json& kind = at(*type, "kind");
        if (kind == "enum" || kind == "struct") {
            auto& known = flows[text(kind) + ":" + text(at(*type, "name"))];
            known = known.with(flow);
        }
    };
    // Structures pass their flows on to what they hold: repeat until nothing grows.
    while (true) {
        const auto before = flows;
        for (const auto& [fields, flow] : lists) {
            for (const Json* field : fields) mark(&at(*field, "type"), flow);
        }
        for (const Json* s : list(iface, "structs")) {
            const auto found = flows.find("struct:" + name_of(s));
            if (found == flows.end()) continue;
            const Flows holder = found->second;
            for (const Json* field : list(*s, "fields")) mark(&at(*field, "type"), holder);
        }
        if (flows == before) return flows;
    }
}

/// Lists the changes from one description to another.
class Differ {
public:
    Differ(const Json& old_iface, const Json& new_iface)
        : old_flows_(flows_of(old_iface)), new_flows_(flows_of(new_iface)) {}

    std::vector<Change> interface(const Json& old_iface, const Json& new_iface) {
        if (at(old_iface, "name") != at(new_iface, "name")) {
            push("interface.name", "interface_renamed",
                 "interface renamed from `" + text(at(old_iface, "name")) + "` to `" +
                     text(at(new_iface, "name")) + "`",
                 {false, false});
        }
        // Constants never travel; definitions travel only through the lists that use them.
        members("enums", "enums", "enum", old_iface, new_iface, {true, true},
                [this](const auto& path, const Json& o, const Json& n) { enum_def(path, o, n); });
        members("structures", "structs", "structure", old_iface, new_iface, {true, true},
                [this](const auto& path, const Json& o, const Json& n) { struct_def(path, o, n); });
        members("errors", "errors", "error", old_iface, new_iface, {true, true},
                [this](const auto& path, const Json& o, const Json& n) {
                    fields(path, "values", "value", list(o, "fields"), list(n, "fields"), kToClient);
                });
        // A member added is safe for old clients (they never use it) and breaks old servers.
        for (const auto& section : kMemberSections) {
            members(section.key, section.key, section.noun, old_iface, new_iface, {true, false},
                    [this, &section](const auto& path, const Json& o, const Json& n) {
                        member(section.kind, path, o, n);
                    });
        }
        if (at(old_iface, "configuration") != at(new_iface, "configuration")) {
            push("configuration", "configuration_changed",
                 "topic layout changed: MQTT peers of the two versions use different topics",
                 {false, false});
        }
        return std::move(out_);
    }

private:
    using Inner = std::function<void(const std::string&, const Json&, const Json&)>;

    void push(std::string path, std::string kind, std::string message,
              std::pair<bool, bool> verdicts) {
        out_.push_back(
            {std::move(path), std::move(kind), std::move(message), verdicts.first, verdicts.second});
    }

    [[nodiscard]] Flows flows(const std::string& key) const {
        Flows flow;
        if (const auto found = old_flows_.find(key); found != old_flows_.end()) {
            flow = flow.with(found->second);
        }
        if (const auto found = new_flows_.find(key); found != new_flows_.end()) {
            flow = flow.with(found->second);
        }
        return flow;
    }

    /// Compares the lists `key` of two descriptions, named `section` in paths: a definition or
    /// member in both goes to `inner`; one added gets `added`, one removed the mirror of it.
    void members(const std::string& section, const char* key, const std::string& noun,
                 const Json& old_iface, const Json& new_iface, std::pair<bool, bool> added,
                 const Inner& inner) {
        const auto old_items = list(old_iface, key);
        const auto new_items = list(new_iface, key);
        for (const Json* o : old_items) {
            const std::string path = section + "." + name_of(o);
            if (const Json* n = find_named(new_items, at(*o, "name"))) {
                inner(path, *o, *n);
            } else {
                // Removing mirrors adding.
                push(path, "member_removed", noun + " removed", {added.second, added.first});
            }
        }
        for (const Json* n : new_items) {
            if (find_named(old_items, at(*n, "name")) == nullptr) {
                push(section + "." + name_of(n), "member_added", noun + " added", added);
            }
        }
    }

    static const Json* find_named(const std::vector<const Json*>& items, const Json& name) {
        for (const Json* item : items) {
            if (at(*item, "name") == name) return item;
        }
        return nullptr;
    }

    void fields(const std::string& path, const std::string& key, const std::string& noun,
                const std::vector<const Json*>& old_fields,
                const std::vector<const Json*>& new_fields, const Flows& flow) {
        const std::string base = path + "." + key;
        for (const Json* o : old_fields) {
            const std::string field_path = base + "." + name_of(o);
            const Json& old_type = at(*o, "type");
            const Json* n = find_named(new_fields, at(*o, "name"));
            if (n == nullptr) {
                // An old writer's extra key is ignored by a new reader; an old reader misses
                // the value unless it was optional.
                push(field_path, "field_removed", noun + " removed (" + describe_type(old_type) + ")",
                     flow.verdicts(true, is_optional(old_type)));
            } else if (const Json& new_type = at(*n, "type"); old_type != new_type) {
                push(field_path, "field_type_changed",
                     noun + " type changed from " + describe_type(old_type) + " to " +
                         describe_type(new_type),
                     flow.verdicts(fits(old_type, new_type), fits(new_type, old_type)));
            }
        }
        for (const Json* n : new_fields) {
            if (find_named(old_fields, at(*n, "name")) == nullptr) {
                const Json& type = at(*n, "type");
                push(base + "." + name_of(n), "field_added",
                     noun + " added (" + describe_type(type) + ")",
                     flow.verdicts(is_optional(type), true));
            }
        }
    }

    void enum_def(const std::string& path, const Json& old_enum, const Json& new_enum) {
        const Flows flow = flows("enum:" + text(at(old_enum, "name")));
        const auto old_values = list(old_enum, "values");
        const auto new_values = list(new_enum, "values");
        std::set<Json> renamed_to;
        for (const Json* o : old_values) {
            const std::string value_path = path + ".values." + name_of(o);
            const Json& number = at(*o, "value");
            if (const Json* same = find_named(new_values, at(*o, "name"))) {
                if (at(*same, "value") != number) {
                    // Each side reads the other's integer as another value, or none.
                    push(value_path, "enum_value_renumbered",
                         "value renumbered from " + text(number) + " to " +
                             text(at(*same, "value")),
                         flow.verdicts(false, false));
                }
                continue;
            }
            const Json* renamed = nullptr;
            for (const Json* n : new_values) {
                if (at(*n, "value") == number && find_named(old_values, at(*n, "name")) == nullptr) {
                    renamed = n;
                    break;
                }
            }
            if (renamed != nullptr) {
                renamed_to.insert(at(*renamed, "name"));
                push(value_path, "enum_value_renamed",
                     "value " + text(number) + " renamed to `" + name_of(renamed) +
                         "`; the wire carries the integer",
                     {true, true});
            } else {
                // An old writer may still send it; a new writer never does.
                push(value_path, "enum_value_removed", "value " + text(number) + " removed",
                     flow.verdicts(false, true));
            }
        }
        for (const Json* n : new_values) {
            const Json& name = at(*n, "name");
            if (find_named(old_values, name) == nullptr && !renamed_to.contains(name)) {
                // An old reader refuses a value it does not know.
                push(path + ".values." + name_of(n), "enum_value_added",
                     "value " + text(at(*n, "value")) + " added", flow.verdicts(true, false));
            }
        }
    }

    void struct_def(const std::string& path, const Json& old_struct, const Json& new_struct) {
        fields(path, "members", "member", list(old_struct, "fields"), list(new_struct, "fields"),
               flows("struct:" + text(at(old_struct, "name"))));
    }

    void member(MemberKind kind, const std::string& path, const Json& o, const Json& n) {
        switch (kind) {
            case MemberKind::Signal:
                fields(path, "payload", "value", list(o, "fields"), list(n, "fields"), kToClient);
                break;
            case MemberKind::Property:
                property(path, o, n);
                break;
            case MemberKind::Method:
                fields(path, "arguments", "argument", list(o, "arguments"), list(n, "arguments"),
                       kToServer);
                fields(path, "returnValues", "return value", list(o, "returns"),
                       list(n, "returns"), kToClient);
                break;
            case MemberKind::Command:
                fields(path, "arguments", "argument", list(o, "arguments"), list(n, "arguments"),
                       kToServer);
                break;
            case MemberKind::Action:
                fields(path, "goal", "goal field", list(o, "goal"), list(n, "goal"), kToServer);
                fields(path, "feedback", "feedback field", list(o, "feedback"),
                       list(n, "feedback"), kToClient);
                fields(path, "result", "result field", list(o, "result"), list(n, "result"),
                       kToClient);
                break;
        }
    }

    void property(const std::string& path, const Json& o, const Json& n) {
        const bool was_read_only = at(o, "read_only") == true;
        const bool is_read_only = at(n, "read_only") == true;
        if (was_read_only != is_read_only) {
            if (is_read_only) {
                // Old clients may still try to set it.
                push(path + ".readOnly", "read_only_changed", "property made read-only",
                     {false, true});
            } else {
                // New clients may set it; an old server refuses.
                push(path + ".readOnly", "read_only_changed", "property made writable",
                     {true, false});
            }
        }
        fields(path, "values", "value", list(o, "fields"), list(n, "fields"),
               property_flows(o).with(property_flows(n)));
    }

    std::map<std::string, Flows> old_flows_;
    std::map<std::string, Flows> new_flows_;
    std::vector<Change> out_;
};

/// Whether `description` looks like an interface description this module can compare.
bool readable(const Json& description) {
    if (!description.is_object() || !at(description, "name").is_string()) return false;
    for (const char* key :
         {"enums", "structs", "errors", "signals", "properties", "methods", "commands", "actions"}) {
        const auto section = description.find(key);
        if (section != description.end() && !section->is_array()) return false;
    }
    return true;
}

std::string string_or_empty(const Json& value) {
    return value.is_string() ? value.get<std::string>() : std::string();
}

}  // namespace

std::vector<Change> compare(const Json& old_description, const Json& new_description) {
    return Differ(old_description, new_description).interface(old_description, new_description);
}

const char* section_of(MemberKind kind) { return member_section(kind).key; }

Peer Peer::from_hello(const Json& hello) {
    Peer peer;
    peer.interface = string_or_empty(at(hello, "interface"));
    peer.version = string_or_empty(at(hello, "version"));
    if (const Json& hash = at(hello, "hash"); hash.is_string()) peer.hash = hash.get<std::string>();
    peer.description = at(hello, "description");
    return peer;
}

Peer Peer::from_identity(const ClientIdentity& identity) {
    Peer peer{identity.interface, identity.version, identity.hash,
              Json::parse(identity.description, nullptr, false)};
    if (peer.description.is_discarded()) peer.description = Json();
    return peer;
}

std::string Peer::summary() const {
    std::string which = "any hash";
    if (hash) {
        const std::string prefix = "sha256:";
        const std::string digits = hash->starts_with(prefix) ? hash->substr(prefix.size()) : *hash;
        which = prefix + digits.substr(0, 12);
    }
    return interface + " " + version + " (" + which + ")";
}

void Agreement::require(MemberKind kind, const std::string& name) const {
    if (auto error = refusal(kind, name)) std::rethrow_exception(error);
}

bool Agreement::refuse(MemberKind kind, const std::string& name, const Completion& done) const {
    auto error = refusal(kind, name);
    if (!error) return false;
    Outcome outcome;
    outcome.error = std::move(error);
    done(std::move(outcome));
    return true;
}

std::exception_ptr Agreement::refusal(MemberKind kind, const std::string& name) const {
    for (const auto& member : lacking_) {
        if (member.kind != kind || member.name != name) continue;
        static const std::map<MemberKind, const char*> error_names{
            {MemberKind::Signal, "UnknownSignal"},     {MemberKind::Property, "UnknownProperty"},
            {MemberKind::Method, "UnknownMethod"},     {MemberKind::Command, "UnknownCommand"},
            {MemberKind::Action, "UnknownAction"},
        };
        return std::make_exception_ptr(RemoteError(
            ErrorCode::MethodNotFound, error_names.at(kind),
            "the server serves " + server_ + ", which has no " + member_section(kind).noun +
                " `" + name + "`; nothing was sent"));
    }
    return nullptr;
}

Agreement check(const Peer& client, const Peer& server) {
    const std::string mismatch =
        "client was generated from " + client.summary() + ", server serves " + server.summary();
    if (client.interface != server.interface) throw Incompatible(mismatch);
    if (!client.hash || !server.hash || *client.hash == *server.hash) {
        return Agreement(server.summary(), {});
    }
    if (!readable(client.description) || !readable(server.description)) {
        throw Incompatible(mismatch);
    }
    std::vector<Member> lacking;
    for (const auto& change : compare(client.description, server.description)) {
        if (change.clients_ok) continue;
        const auto dot = change.path.find('.');
        const std::string section = change.path.substr(0, dot);
        const std::string name = dot == std::string::npos ? "" : change.path.substr(dot + 1);
        if (change.kind == "member_removed" && !name.empty() && name.find('.') == std::string::npos) {
            bool found = false;
            for (const auto& member : kMemberSections) {
                if (section == member.key) {
                    lacking.push_back({member.kind, name});
                    found = true;
                }
            }
            if (found) continue;
        }
        throw Incompatible(mismatch + ", and the change at `" + change.path +
                           "` breaks this client: " + change.message);
    }
    return Agreement(server.summary(), std::move(lacking));
}

}  // namespace switchboard::detail
