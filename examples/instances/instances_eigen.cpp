// Explicit instantiation of Transformer and Trainer for the Eigen backend's four policies.
#define ROSETTA_INSTANTIATE_BACKEND_EIGEN
#include <rosetta/rosetta.hpp>

ROSETTA_INSTANCES_FOR(template, rosetta::backend::Eigen)
