// A C++ client for the Rust and C++ servers of tests/it/cpp.rs:
// `client_check thermostat|jobs|actions|fault|malformed|broker-restart|evolving-newer|evolving-lacking|evolving-breaking WHERE`,
// WHERE a socket path or an `mqtt://` URL.
// Each check prints what it saw on failure; the exit status is the number of failed checks.
// `fault` starts a long call, prints "in flight" and expects the call to fail with a transport
// error once the test kills the server.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <evolving/evolving.hpp>
#include <jobs/jobs.hpp>
#include <thermostat/thermostat.hpp>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
    if (!ok) {
        ++failures;
        std::cerr << "FAILED: " << what << "\n";
    }
}

template <class F>
void expect_throws(F&& f, const std::string& what) {
    try {
        f();
        check(false, what + ": no exception");
    } catch (...) {
    }
}

/// Waits until `done` holds, for at most `limit`.
template <class Pred>
bool wait_for(std::mutex& mutex, std::condition_variable& cv, Pred done,
              std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, limit, done);
}

void thermostat_checks(const std::string& path) {
    using namespace std::chrono_literals;
    auto client = thermostat::ThermostatClient::connect(path);

    auto status = client.get_status().get();
    check(status.mode == thermostat::Mode::eco, "get_status: mode eco");
    check(status.celsius == 18.5, "get_status: celsius 18.5");
    check(status.history == std::vector<double>{18.0, 18.5}, "get_status: history");

    const auto before = std::chrono::system_clock::now();
    const auto ends = client.boost(1.5, 10ms, std::string("check")).get();
    check(ends >= before - 1s && ends <= before + 60s, "boost returns a time near now");

    // Many in flight: the server answers each after 200 ms; run one after another they would
    // take 4 s.
    std::vector<std::future<switchboard::DateTime>> calls;
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) calls.push_back(client.boost(0.5, 200ms, std::nullopt));
    for (auto& call : calls) call.get();
    const auto took = std::chrono::steady_clock::now() - started;
    check(took < 2s, "20 calls in flight finish together, took " +
                         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
                         " ms");

    try {
        client.boost(0.5, 5s, std::nullopt, 100ms).get();
        check(false, "a call past its deadline throws");
    } catch (const switchboard::TimeoutError&) {
    }

    // Properties: read, update, watch with versions.
    check(client.get_setpoint().get() == 21.0, "setpoint starts at 21");
    check(client.get_mode().get() == thermostat::Mode::eco, "mode is eco");
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::pair<double, std::uint64_t>> seen;
    auto watch = client.watch_setpoint([&](const double& celsius, std::uint64_t version) {
        std::lock_guard lock(mutex);
        seen.emplace_back(celsius, version);
        cv.notify_all();
    });
    check(wait_for(mutex, cv, [&] { return !seen.empty(); }), "watch sends the current value");
    client.set_setpoint(23.5).get();
    check(client.get_setpoint().get() == 23.5, "set_setpoint changes the value");
    check(wait_for(mutex, cv, [&] { return seen.size() >= 2; }), "watch sends the new value");
    {
        std::lock_guard lock(mutex);
        if (seen.size() >= 2) {
            check(seen[0].first == 21.0, "first watched value is 21");
            check(seen[1].first == 23.5, "second watched value is 23.5");
            check(seen[1].second == seen[0].second + 1, "versions grow by one");
        }
    }
    watch.reset();

    // A read-only property refuses updates: the server says no, it is not a transport error.
    std::promise<void> refused;
    auto refusal = refused.get_future();
    client.connection().set_property("mode", switchboard::Json{{"mode", 0}},
                                      [&](switchboard::Outcome outcome) {
                                          if (outcome.error) {
                                              refused.set_exception(outcome.error);
                                          } else {
                                              refused.set_value();
                                          }
                                      });
    try {
        refusal.get();
        check(false, "setting a read-only property fails");
    } catch (const switchboard::RemoteError& error) {
        check(error.name() == "ReadOnlyProperty", "read-only refusal is named ReadOnlyProperty, got " + error.name());
    }

    // Signals.
    std::atomic<int> readings{0};
    std::atomic<bool> plausible{true};
    auto subscription = client.subscribe_temperature_changed([&](const thermostat::TemperatureChanged& s) {
        if (s.measured_at.time_since_epoch().count() == 0) plausible = false;
        ++readings;
        cv.notify_all();
    });
    check(wait_for(mutex, cv, [&] { return readings.load() >= 3; }), "three temperature readings arrive");
    check(plausible.load(), "readings carry their time");
    subscription.reset();

    // An unknown method is the server saying no.
    std::promise<void> unknown;
    auto unknown_future = unknown.get_future();
    client.connection().call("noSuchMethod", switchboard::Json::object(), 1s, [&](switchboard::Outcome outcome) {
        if (outcome.error) {
            unknown.set_exception(outcome.error);
        } else {
            unknown.set_value();
        }
    });
    try {
        unknown_future.get();
        check(false, "an unknown method fails");
    } catch (const switchboard::RemoteError& error) {
        check(error.code() == switchboard::ErrorCode::MethodNotFound, "unknown method has code 9");
    }

    // A client generated from another version of the interface, which sends no description to
    // compare member by member, is refused at the handshake.
    try {
        switchboard::connect(path, {"Thermostat", "9.9.9", std::string("sha256:00"), "default", ""});
        check(false, "a client with another hash is refused");
    } catch (const switchboard::RemoteError& error) {
        check(error.name() == "IncompatibleInterface", "refusal is IncompatibleInterface, got " + error.name());
    }
}

void jobs_checks(const std::string& path) {
    auto client = jobs::JobsClient::connect(path);
    check(client.lookup("abc").get() == "ABC", "lookup upper-cases");
    try {
        client.lookup("missing").get();
        check(false, "lookup(missing) fails");
    } catch (const jobs::NotFound& error) {
        check(error.key == "missing", "NotFound carries the key");
    }
    try {
        client.lookup("quota").get();
        check(false, "lookup(quota) fails");
    } catch (const jobs::QuotaExceeded& error) {
        check(error.used == 7 && error.limit == 5, "QuotaExceeded carries used and limit");
        const switchboard::DateTime expected{std::chrono::seconds{1893553445} + std::chrono::microseconds{123456}};
        check(error.resets_at == std::optional<switchboard::DateTime>(expected), "QuotaExceeded carries resetsAt");
    }
    try {
        client.lookup("other").get();
        check(false, "lookup(other) fails");
    } catch (const jobs::NotFound&) {
        check(false, "an undeclared error is not a declared one");
    } catch (const switchboard::RemoteError& error) {
        check(error.name() == "RateLimited", "undeclared error keeps its name, got " + error.name());
    }

    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::string> notices;
    auto subscription = client.subscribe_notice([&](const jobs::Notice& notice) {
        std::lock_guard lock(mutex);
        notices.push_back(notice.text);
        cv.notify_all();
    });
    // SUBSCRIBE is not acknowledged: a round trip makes sure it is in force.
    client.lookup("x").get();
    client.note("hello", false);
    check(wait_for(mutex, cv, [&] { return !notices.empty(); }), "the command's notice arrives");
    std::lock_guard lock(mutex);
    check(!notices.empty() && notices[0] == "hello", "the notice says hello");
}

/// The feedback values one goal has received, as its `on_feedback` callback records them.
struct FeedbackLog {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::int64_t> values;

    std::function<void(const jobs::CountFeedback&)> recorder() {
        return [this](const jobs::CountFeedback& feedback) {
            std::lock_guard lock(mutex);
            values.push_back(feedback.value);
            cv.notify_all();
        };
    }
    std::vector<std::int64_t> seen() {
        std::lock_guard lock(mutex);
        return values;
    }
};

std::vector<std::int64_t> one_to(std::int64_t last) {
    std::vector<std::int64_t> values;
    for (std::int64_t value = 1; value <= last; ++value) values.push_back(value);
    return values;
}

/// The `count` action of a Jobs server (the behaviour of the Rust fixture `serve_jobs`):
/// acceptance and rejection, every feedback in order (the first included), cancelling before
/// the start, while running and after the end, a declared error and a failing handler.
void actions_checks(const std::string& where) {
    using namespace std::chrono_literals;
    auto client = jobs::JobsClient::connect(where);

    {
        FeedbackLog log;
        auto goal = client.count(3, 1, 0, log.recorder()).get();
        check(goal.result().get() == 3, "count(3) succeeds with 3");
        check(goal.status() == switchboard::GoalStatus::Succeeded, "a goal that succeeded says so");
        check(log.seen() == one_to(3), "count(3) sends feedback 1, 2, 3");
        check(!goal.id().empty(), "a goal has an id");
    }
    try {
        client.count(-1, 1, 0).get();
        check(false, "count(-1) is rejected");
    } catch (const jobs::BadInput& error) {
        check(error.field == "to" && error.reason == "must not be negative",
              "the rejection is the declared BadInput with its fields");
    }
    {
        FeedbackLog log;
        auto goal = client.count(200, 0, 0, log.recorder()).get();
        check(goal.result().get() == 200, "count(200) succeeds");
        check(log.seen() == one_to(200), "200 feedback back to back arrive in order, none lost");
    }
    {
        FeedbackLog log;
        auto goal = client.count(5, 10, 30000, log.recorder()).get();
        check(goal.cancel().get() == switchboard::GoalStatus::Canceling,
              "cancelling a goal before it starts answers canceling");
        try {
            goal.result().get();
            check(false, "a goal cancelled before it started does not succeed");
        } catch (const switchboard::GoalCancelled&) {
        }
        check(goal.status() == switchboard::GoalStatus::Cancelled, "the goal ended cancelled");
        check(log.seen().empty(), "a goal cancelled before it started sent no feedback");
    }
    {
        FeedbackLog log;
        auto goal = client.count(10000, 10, 0, log.recorder()).get();
        check(wait_for(log.mutex, log.cv, [&] { return !log.values.empty(); }),
              "a running goal sends feedback");
        check(goal.status() == switchboard::GoalStatus::Executing, "a running goal is executing");
        goal.cancel().get();
        try {
            goal.result().get();
            check(false, "a goal cancelled while running does not succeed");
        } catch (const switchboard::GoalCancelled&) {
        }
        const auto seen = log.seen();
        check(!seen.empty() && seen.front() == 1 && seen == one_to(seen.back()),
              "the feedback before the cancel arrived in order from 1");
    }
    {
        auto goal = client.count(2, 0, 0).get();
        check(goal.result().get() == 2, "count(2) succeeds");
        check(goal.cancel().get() == switchboard::GoalStatus::Succeeded,
              "cancelling a goal that ended answers its end state");
        check(goal.result().get() == 2, "and its result stays");
    }
    try {
        client.count(13, 1, 0).get().result().get();
        check(false, "count(13) fails");
    } catch (const jobs::QuotaExceeded& error) {
        check(error.used == 1 && error.limit == 1 && !error.resets_at,
              "the goal fails with the declared QuotaExceeded and its fields");
    }
    try {
        client.count(99, 1, 0).get().result().get();
        check(false, "count(99) fails");
    } catch (const switchboard::RemoteError& error) {
        check(error.name() == "Internal" && error.code() == switchboard::ErrorCode::ServerError,
              "a failing handler ends its goal with Internal, got " + error.name());
        check(std::string(error.what()).find("secret") == std::string::npos,
              "the handler's text is not sent");
    }
    // Goals of one client run at the same time, each with its own feedback.
    {
        FeedbackLog first_log;
        FeedbackLog second_log;
        auto first = client.count(10000, 10, 0, first_log.recorder()).get();
        auto second = client.count(10000, 10, 0, second_log.recorder()).get();
        check(first.id() != second.id(), "two goals have two ids");
        check(wait_for(first_log.mutex, first_log.cv, [&] { return first_log.values.size() >= 2; }) &&
                  wait_for(second_log.mutex, second_log.cv,
                           [&] { return second_log.values.size() >= 2; }),
              "two goals run at once");
        first.cancel().get();
        second.cancel().get();
        expect_throws([&] { first.result().get(); }, "the first goal ends cancelled");
        expect_throws([&] { second.result().get(); }, "the second goal ends cancelled");
    }
}

/// A goal in flight when the server dies ends with `TransportError`.
void action_fault_checks(const std::string& where) {
    auto client = jobs::JobsClient::connect(where);
    auto goal = client.count(100000, 10, 0).get();
    std::cout << "in flight" << std::endl;
    try {
        goal.result().get();
        check(false, "a goal whose server died does not succeed");
    } catch (const switchboard::TransportError&) {
    } catch (const std::exception& error) {
        check(false, std::string("expected a TransportError, got: ") + error.what());
    }
}

/// A call in flight when the server dies fails with `TransportError`, not a timeout.
void fault_checks(const std::string& where) {
    using namespace std::chrono_literals;
    auto client = thermostat::ThermostatClient::connect(where);
    check(client.get_status().get().celsius == 18.5, "the server answers before it is killed");
    auto call = client.boost(0.5, 60s, std::nullopt, 120s);
    std::cout << "in flight" << std::endl;
    if (call.wait_for(60s) != std::future_status::ready) {
        check(false, "the call in flight ends within 60 s of the server's death");
        std::_Exit(failures);  // the client cannot be closed cleanly with a call that never ends
    }
    try {
        call.get();
        check(false, "a call to a killed server fails");
    } catch (const switchboard::TransportError&) {
    } catch (const std::exception& error) {
        check(false, std::string("a call to a killed server fails with TransportError, got: ") +
                         error.what());
    }
    try {
        client.get_status().get();
        check(false, "a call after the server's death fails");
    } catch (const switchboard::TransportError&) {
    }
}

/// Against the fake server of `a_cpp_client_survives_malformed_answers` (tests/it/cpp.rs), which
/// answers four `getStatus` calls: with a payload that is not JSON, with a value of the wrong
/// type, correctly after frames the client must skip, and with an oversized frame.
void malformed_checks(const std::string& path) {
    auto client = thermostat::ThermostatClient::connect(path);
    // Both in flight before either is answered: the server answers them together.
    auto not_json = client.get_status();
    auto wrong_type = client.get_status();
    try {
        not_json.get();
        check(false, "an answer that is not JSON throws");
    } catch (const switchboard::DecodeError&) {
    } catch (const std::exception& error) {
        check(false, std::string("an answer that is not JSON throws DecodeError, got: ") + error.what());
    }
    try {
        wrong_type.get();
        check(false, "an answer of the wrong type throws");
    } catch (const switchboard::DecodeError& error) {
        check(std::string(error.what()).find("celsius") != std::string::npos,
              std::string("the DecodeError names the member: ") + error.what());
    } catch (const std::exception& error) {
        check(false, std::string("an answer of the wrong type throws DecodeError, got: ") + error.what());
    }
    try {
        const auto status = client.get_status().get();
        check(status.celsius == 19.5 && status.history == std::vector<double>{19.0},
              "the answer after the skipped frames arrives");
    } catch (const std::exception& error) {
        check(false, std::string("the answer after the skipped frames arrives, got: ") + error.what());
    }
    try {
        client.get_status().get();
        check(false, "a call answered by an oversized frame fails");
    } catch (const switchboard::TransportError&) {
    } catch (const std::exception& error) {
        check(false, std::string("an oversized frame fails the call with TransportError, got: ") +
                         error.what());
    }
}

/// Against a Rust thermostat on a private broker that the test restarts: says "connected" once a
/// call has been answered, waits for a line on standard input (the broker has been restarted),
/// then calls until an answer comes (libmosquitto reconnects, the server announces itself
/// again); meanwhile a call fails with `TransportError` or `TimeoutError`, never otherwise.
void broker_restart_checks(const std::string& where) {
    using namespace std::chrono_literals;
    auto client = thermostat::ThermostatClient::connect(where);
    check(client.get_status().get().celsius == 18.5, "the server answers before the restart");
    std::cout << "connected" << std::endl;
    std::string line;
    std::getline(std::cin, line);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    bool answered = false;
    while (!answered && std::chrono::steady_clock::now() < deadline) {
        try {
            answered = client.get_status(2s).get().celsius == 18.5;
        } catch (const switchboard::TransportError&) {
            std::this_thread::sleep_for(200ms);
        } catch (const switchboard::TimeoutError&) {
        }
    }
    check(answered, "a call is answered within 30 s of the broker's restart");
}

/// A client of tests/interfaces/evolve/v1.yaml against a server of a newer, compatible version
/// (added_struct_field.yaml): the server accepts it from its description, and the new struct
/// member it sends is ignored.
void evolving_newer_checks(const std::string& path) {
    auto client = evolving::EvolvingClient::connect(path);
    check(client.set_target(21.5, std::string("hi")).get(), "setTarget accepted");
    check(!client.set_target(21.5, std::string("refuse")).get(), "setTarget refused");
    check(client.set_target(21.5, std::nullopt).get(), "setTarget without a note");
    check(client.read().get().celsius == 21.5, "read ignores the member it does not know");
    check(client.mode().get() == evolving::Mode::heat, "mode");
    client.ping().get();
}

/// A client of v1.yaml against a server of removed_method.yaml: it connects, and its call to the
/// method the server lacks fails before anything is sent with `UnknownMethod` (code 9), whose
/// message it prints (`unknown: MESSAGE`) for the test to compare with the Rust client's.
void evolving_lacking_checks(const std::string& path) {
    auto client = evolving::EvolvingClient::connect(path);
    check(client.set_target(21.5, std::string("hi")).get(), "setTarget accepted");
    check(client.read().get().celsius == 21.5, "read");
    try {
        client.ping().get();
        check(false, "a call to a method the server lacks fails");
    } catch (const switchboard::RemoteError& error) {
        check(error.code() == switchboard::ErrorCode::MethodNotFound, "code 9");
        check(error.name() == "UnknownMethod", "UnknownMethod, got " + error.name());
        std::cout << "unknown: " << error.message() << std::endl;
    }
    check(client.mode().get() == evolving::Mode::heat, "the client goes on after the refusal");
}

/// A client of v1.yaml against a server of changed_type.yaml: refused, naming the change; prints
/// the refusal (`refused: MESSAGE`) for the test to compare with the Rust client's.
void evolving_breaking_checks(const std::string& path) {
    try {
        evolving::EvolvingClient::connect(path);
        check(false, "a server of a breaking version refuses the client");
    } catch (const switchboard::RemoteError& error) {
        check(error.name() == "IncompatibleInterface", "refused as IncompatibleInterface, got " + error.name());
        check(error.message().find("`methods.setTarget.arguments.celsius`") != std::string::npos,
              "the refusal names the change: " + error.message());
        std::cout << "refused: " << error.message() << std::endl;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: client_check thermostat|jobs|actions|action-fault|fault|malformed|broker-restart|evolving-newer|evolving-lacking|evolving-breaking WHERE\n";
        return 100;
    }
    const std::string role = argv[1];
    try {
        if (role == "thermostat") {
            thermostat_checks(argv[2]);
        } else if (role == "jobs") {
            jobs_checks(argv[2]);
        } else if (role == "actions") {
            actions_checks(argv[2]);
        } else if (role == "action-fault") {
            action_fault_checks(argv[2]);
        } else if (role == "fault") {
            fault_checks(argv[2]);
        } else if (role == "malformed") {
            malformed_checks(argv[2]);
        } else if (role == "broker-restart") {
            broker_restart_checks(argv[2]);
        } else if (role == "evolving-newer") {
            evolving_newer_checks(argv[2]);
        } else if (role == "evolving-lacking") {
            evolving_lacking_checks(argv[2]);
        } else if (role == "evolving-breaking") {
            evolving_breaking_checks(argv[2]);
        } else {
            std::cerr << "unknown role " << role << "\n";
            return 100;
        }
    } catch (const std::exception& error) {
        std::cerr << "FAILED with an exception: " << error.what() << "\n";
        return 101;
    }
    return failures;
}
