// The process's one c10d process group, as JS sees it: distInit (rendezvous, off the event loop), distBarrier,
// distInfo. Trainers created with { distributed: true } use this group.
#pragma once
#include <memory>

#include <napi.h>

#include "distributed/distributed.h"

namespace petaddon {

// The group distInit created; null before.
std::shared_ptr<petcore::DistGroup> CurrentGroup();
void RegisterDist(Napi::Env env, Napi::Object exports);

}  // namespace petaddon
