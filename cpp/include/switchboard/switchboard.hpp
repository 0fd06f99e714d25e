// The switchboard C++ runtime: everything generated code and its users include.
#pragma once

#include "switchboard/client.hpp"
#include "switchboard/codec.hpp"
#include "switchboard/error.hpp"
#include "switchboard/server.hpp"
#include "switchboard/mqtt.hpp"
