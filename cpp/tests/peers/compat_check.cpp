// The C++ runtime's compatibility check on pairs of handshakes, for tests/it/evolve.rs to hold
// against the Rust one: `compat_check PAIRS.json`, a JSON list of [client Hello, server Hello].
// Prints one JSON list with, per pair, {"lacking": [[section, name], ...]} (sorted) or
// {"refused": message}. Exits 2 when the file is not such a list.
#include <algorithm>
#include <array>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "compat.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: compat_check PAIRS.json\n";
        return 2;
    }
    std::ifstream file(argv[1]);
    const auto pairs = switchboard::Json::parse(file, nullptr, false);
    if (!pairs.is_array()) {
        std::cerr << "compat_check: " << argv[1] << " is not a JSON list\n";
        return 2;
    }
    using switchboard::detail::Peer;
    auto results = switchboard::Json::array();
    for (const auto& pair : pairs) {
        if (!pair.is_array() || pair.size() != 2) {
            std::cerr << "compat_check: each pair must be [client Hello, server Hello]\n";
            return 2;
        }
        try {
            const auto agreement = switchboard::detail::check(Peer::from_hello(pair.at(0)),
                                                               Peer::from_hello(pair.at(1)));
            std::vector<std::array<std::string, 2>> lacking;
            for (const auto& member : agreement.lacking()) {
                lacking.push_back({switchboard::detail::section_of(member.kind), member.name});
            }
            std::ranges::sort(lacking);
            results.push_back({{"lacking", lacking}});
        } catch (const switchboard::detail::Incompatible& error) {
            results.push_back({{"refused", error.what()}});
        }
    }
    std::cout << results.dump() << "\n";
    return 0;
}
