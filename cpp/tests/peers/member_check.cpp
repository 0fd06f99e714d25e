// A client of any version of an interface for tests/it/cpp.rs, built from the runtime alone:
// `member_check WHERE HELLO.json SECTION NAME` connects to WHERE (a socket path or an `mqtt://`
// URL) as the client HELLO.json describes (`interface`, `version`, `hash`, `description`), uses
// member NAME of SECTION (`methods`, `signals`, `properties`, `commands`, `actions`) every way a
// client can, and prints one JSON object: {"uses": [{"use", "code", "name", "message"} or
// {"use", "ok": true}, ...]}, or {"refused": {"name", "message"}} when the server is refused.
// Exits 2 on bad arguments.
#include <chrono>
#include <exception>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <string>

#include <switchboard/switchboard.hpp>

namespace {

using switchboard::Json;
using namespace std::chrono_literals;

/// What one use of the member ended with.
Json ended(const std::string& use, const std::exception_ptr& error) {
    if (!error) return {{"use", use}, {"ok", true}};
    try {
        std::rethrow_exception(error);
    } catch (const switchboard::RemoteError& remote) {
        return {{"use", use},
                {"code", static_cast<int>(remote.code())},
                {"name", remote.name()},
                {"message", remote.message()}};
    } catch (const std::exception& other) {
        return {{"use", use}, {"code", nullptr}, {"name", "exception"}, {"message", other.what()}};
    }
}

/// A use that completes a `Completion`, waited for at most 10 s.
Json completed(const std::string& use,
               const std::function<void(switchboard::Completion)>& request) {
    auto promise = std::make_shared<std::promise<std::exception_ptr>>();
    auto future = promise->get_future();
    request([promise](const switchboard::Outcome& outcome) { promise->set_value(outcome.error); });
    if (future.wait_for(10s) != std::future_status::ready) {
        return {{"use", use}, {"code", nullptr}, {"name", "timeout"}, {"message", "no answer"}};
    }
    return ended(use, future.get());
}

/// A use that throws when it fails.
Json thrown(const std::string& use, const std::function<void()>& request) {
    try {
        request();
        return ended(use, nullptr);
    } catch (...) {
        return ended(use, std::current_exception());
    }
}

Json uses(switchboard::ClientConnection& client, const std::string& section,
          const std::string& name) {
    Json out = Json::array();
    if (section == "methods") {
        out.push_back(completed("call", [&](auto done) {
            client.call(name, Json::object(), 5s, std::move(done));
        }));
    } else if (section == "properties") {
        out.push_back(completed("get", [&](auto done) { client.get_property(name, std::move(done)); }));
        out.push_back(completed("set", [&](auto done) {
            client.set_property(name, Json::object(), std::move(done));
        }));
        out.push_back(thrown("watch", [&] { client.watch(name, [](const Json&, std::uint64_t) {}); }));
    } else if (section == "signals") {
        out.push_back(thrown("subscribe", [&] { client.subscribe(name, [](const Json&) {}); }));
    } else if (section == "commands") {
        out.push_back(thrown("send", [&] { client.send_command(name, Json::object()); }));
    } else if (section == "actions") {
        out.push_back(completed("goal", [&](auto done) {
            client.send_goal(name, "member-check", Json::object(), switchboard::GoalEvents{},
                             std::move(done));
        }));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::cerr << "usage: member_check WHERE HELLO.json SECTION NAME\n";
        return 2;
    }
    std::ifstream file(argv[2]);
    const Json hello = Json::parse(file, nullptr, false);
    if (!hello.is_object() || !hello.value("interface", Json()).is_string()) {
        std::cerr << "member_check: " << argv[2] << " is not a Hello JSON object\n";
        return 2;
    }
    switchboard::ClientIdentity identity;
    identity.interface = hello.at("interface").get<std::string>();
    identity.version = hello.value("version", "");
    if (const auto hash = hello.value("hash", Json()); hash.is_string()) {
        identity.hash = hash.get<std::string>();
    }
    if (const auto description = hello.value("description", Json()); !description.is_null()) {
        identity.description = description.dump();
    }
    try {
        const auto client = switchboard::connect(argv[1], identity);
        std::cout << Json{{"uses", uses(*client, argv[3], argv[4])}}.dump() << std::endl;
    } catch (const switchboard::RemoteError& refused) {
        std::cout << Json{{"refused", {{"name", refused.name()}, {"message", refused.message()}}}}.dump()
                  << std::endl;
    } catch (const std::exception& error) {
        std::cerr << "member_check: " << error.what() << "\n";
        return 1;
    }
    return 0;
}
