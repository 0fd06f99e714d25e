// A C++ server for the Rust clients of tests/it/cpp.rs: `peer_server thermostat|jobs|evolving
// WHERE`, WHERE a socket path or an `mqtt://` URL; `evolving` serves the base version of the
// compatibility matrix (tests/interfaces/evolve/v1.yaml) as the Rust matrix's handler does.
// It prints "ready" once it listens and serves until its standard input closes.
#include <atomic>
#include <cctype>
#include <iostream>
#include <string>
#include <thread>

#include <evolving/evolving.hpp>
#include <jobs/jobs.hpp>
#include <thermostat/thermostat.hpp>

namespace {

class Zone final : public thermostat::ThermostatHandler {
public:
    switchboard::DateTime boost(const switchboard::CallContext&, double extra_celsius,
                                switchboard::Duration for_how_long,
                                std::optional<std::string> reason) override {
        if (extra_celsius > 10.0) {
            throw switchboard::RemoteError::client_error("a boost of more than 10 °C");
        }
        if (reason == std::optional<std::string>("throw")) throw std::runtime_error("secret");
        const auto now = std::chrono::time_point_cast<switchboard::Duration>(
            std::chrono::system_clock::now());
        return now + for_how_long;
    }

    thermostat::GetStatusReply get_status(const switchboard::CallContext&) override {
        return thermostat::GetStatusReply{thermostat::Mode::heat, 19.5, {19.0, 19.5}};
    }

    double preheat(switchboard::GoalContext<thermostat::PreheatFeedback>& goal,
                   double target_celsius) override {
        goal.feedback(thermostat::PreheatFeedback{target_celsius, 100});
        return target_celsius;
    }
};

class Worker final : public jobs::JobsHandler {
public:
    std::string lookup(const switchboard::CallContext&, std::string key) override {
        if (key == "missing") throw jobs::NotFound(key);
        if (key == "quota") {
            // 2030-01-01T22:24:05.123456Z, as the Rust fixture's `resets_at`.
            const switchboard::DateTime at{std::chrono::seconds{1893553445} +
                                           std::chrono::microseconds{123456}};
            throw jobs::QuotaExceeded(7, 5, at);
        }
        if (key == "panic") throw std::runtime_error("secret detail at /srv/jobs/handler.cpp:42");
        if (key == "other") {
            throw switchboard::RemoteError(switchboard::ErrorCode::ClientError, "RateLimited", "slow down");
        }
        for (auto& c : key) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return key;
    }

    void note(const switchboard::CallContext&, std::string text, bool) override {
        if (auto* serving = server.load()) serving->emit_notice(text);
    }

    void accept_count(const switchboard::CallContext&, const jobs::CountGoal& goal) override {
        if (goal.to < 0) throw jobs::BadInput("to", "must not be negative");
    }

    // As the Rust fixture's `count`: waits `start_after_ms`, then counts to `to` with one
    // feedback per `step_ms`, failing with QuotaExceeded at 13 and throwing at 99.
    std::int64_t count(switchboard::GoalContext<jobs::CountFeedback>& goal, std::int64_t to,
                       std::uint32_t step_ms, std::uint32_t start_after_ms) override {
        if (goal.wait_cancelled(std::chrono::milliseconds(start_after_ms))) {
            throw switchboard::GoalCancelled();
        }
        for (std::int64_t value = 1; value <= to; ++value) {
            goal.feedback(jobs::CountFeedback{value});
            if (to == 13) throw jobs::QuotaExceeded(1, 1, std::nullopt);
            if (to == 99) throw std::runtime_error("secret detail");
            if (goal.wait_cancelled(std::chrono::milliseconds(step_ms))) {
                throw switchboard::GoalCancelled();
            }
        }
        return to;
    }

    std::atomic<jobs::JobsServer*> server{nullptr};
};

/// Answers as tests/it/evolve.rs's `Handler` does in v1: `setTarget` accepts a positive
/// temperature unless the note is `refuse`, `read` is 21.5 °C, `mode` heat.
class Evolving final : public evolving::EvolvingHandler {
public:
    bool set_target(const switchboard::CallContext&, double celsius,
                    std::optional<std::string> note) override {
        return celsius > 0.0 && note != std::optional<std::string>("refuse");
    }

    evolving::Reading read(const switchboard::CallContext&) override { return {21.5}; }

    evolving::Mode mode(const switchboard::CallContext&) override { return evolving::Mode::heat; }

    void ping(const switchboard::CallContext&) override {}
};

/// Serves until the standard input closes.
void serve_until_stdin_closes() {
    std::cout << "ready" << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: peer_server thermostat|jobs|evolving WHERE\n";
        return 2;
    }
    const std::string role = argv[1];
    const std::string path = argv[2];
    try {
        if (role == "thermostat") {
            auto server = thermostat::ThermostatServer::serve(
                std::make_shared<Zone>(), thermostat::ThermostatProperties{21.0, thermostat::Mode::heat},
                path);
            std::atomic<bool> done{false};
            std::thread ticker([&] {
                while (!done) {
                    try {
                        server.emit_temperature_changed(20.25, std::chrono::time_point_cast<switchboard::Duration>(
                                                                   std::chrono::system_clock::now()));
                    } catch (const switchboard::TransportError&) {
                        // The broker connection is down for a moment; the next tick tries again.
                    }
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                }
            });
            serve_until_stdin_closes();
            done = true;
            ticker.join();
        } else if (role == "jobs") {
            auto worker = std::make_shared<Worker>();
            auto server = jobs::JobsServer::serve(worker, jobs::JobsProperties{}, path);
            worker->server = &server;
            serve_until_stdin_closes();
            worker->server = nullptr;
        } else if (role == "evolving") {
            auto server = evolving::EvolvingServer::serve(std::make_shared<Evolving>(),
                                                          evolving::EvolvingProperties{}, path);
            serve_until_stdin_closes();
        } else {
            std::cerr << "unknown role " << role << "\n";
            return 2;
        }
    } catch (const std::exception& error) {
        std::cerr << "peer_server: " << error.what() << "\n";
        return 1;
    }
    return 0;
}
