// The C++ client of the bench suite's row 20: times the round trips of the generated C++
// client's `echo` calls to a server of the bench interface (crates/switchboard-bench/bench.yaml).
//
// Usage: rtt_peer WHERE DATA. Connects to WHERE (a socket path or `mqtt://host:port?instance=…`)
// and prints `ready`. Then, for every line N read on standard input, makes N `echo(DATA)` calls
// one after another and prints their round-trip times in nanoseconds on one line, separated by
// spaces. Exits 0 at the end of its input, 1 when a call fails or answers another value.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <bench/bench.hpp>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: rtt_peer WHERE DATA\n";
        return 2;
    }
    try {
        const std::string data = argv[2];
        auto client = bench::BenchClient::connect(argv[1]);
        std::cout << "ready" << std::endl;
        std::vector<std::int64_t> samples;
        std::string line;
        while (std::getline(std::cin, line)) {
            const auto count = std::stoul(line);
            samples.clear();
            for (unsigned long i = 0; i < count; ++i) {
                const auto start = std::chrono::steady_clock::now();
                const auto reply = client.echo(data).get();
                const auto took = std::chrono::steady_clock::now() - start;
                if (reply != data) {
                    std::cerr << "rtt_peer: echo answered another value\n";
                    return 1;
                }
                samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
            }
            for (std::size_t i = 0; i < samples.size(); ++i) {
                std::cout << (i == 0 ? "" : " ") << samples[i];
            }
            std::cout << std::endl;
        }
    } catch (const std::exception& error) {
        std::cerr << "rtt_peer: " << error.what() << '\n';
        return 1;
    }
    return 0;
}
