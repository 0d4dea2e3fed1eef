// Explicit instantiation of Transformer and Trainer for the Cblas backend's four policies.
#define ROSETTA_INSTANTIATE_BACKEND_CBLAS
#include <rosetta/rosetta.hpp>

ROSETTA_INSTANCES_FOR(template, rosetta::backend::Cblas)
