// The atlas side of measured routing: atlas::auto_run(kernel, buffers) runs the kernel on the
// backend that the active routing table (backend::Auto::routes(), backend/auto_table.hpp)
// names for that kernel and buffers.shape.n.
//
//   const Kernel* k = registry().find("softmax");
//   Buffers buf = k->make(65536, 42);
//   auto_run(*k, buf);                       // or: RunFn f = auto_resolve(*k, n); f(buf) ...
//
// No route for the kernel and size, a route the table substituted, or a route to a backend
// this kernel lacks in this build: the first implementation the kernel has in
// kAutoFallbackOrder (ordered by how many (kernel, size) cases each backend won in
// benchmarks/atlas.json on the development machine: hwy_dynamic 53, eigen 48, hwy_static 45,
// naive 27, openblas 6, blis 1). Every kernel has a naive implementation, so one is found.
//
// The table's atlas entries are checked against the kernels and backends of this build only
// when it is loaded through load_routes() (the model side, backend::Auto, does not know the
// atlas); auto_resolve() re-checks at run time, so a table loaded elsewhere cannot make it
// call a missing implementation.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "rosetta/atlas/atlas.hpp"
#include "rosetta/backend/auto.hpp"

namespace rosetta::atlas {

inline constexpr std::array<Backend, kNumBackends> kAutoFallbackOrder = {
    Backend::hwy_dynamic, Backend::eigen,    Backend::hwy_static,
    Backend::naive,       Backend::openblas, Backend::blis};

/// backend::Auto::catalog() plus this build's atlas: its backends and kernels.
inline routing::Catalog route_catalog(bool substitute_missing = false) {
  routing::Catalog c = backend::Auto::catalog(substitute_missing);
  c.check_atlas = true;
  for (Backend b : available_backends()) c.atlas[index(b)] = true;
  c.kernel_has = [](std::string_view kernel, Backend b) -> int {
    const Kernel* k = registry().find(kernel);
    return k == nullptr ? -1 : (k->has(b) ? 1 : 0);
  };
  return c;
}

/// Parses the table in `path`, validating gemm and atlas entries against this build, and
/// makes it the active table (backend::Auto's too); on error the active table is unchanged.
inline const routing::RouteTable& load_routes(const std::string& path) {
  return backend::Auto::install(routing::RouteTable::load_file(path, route_catalog()));
}

/// The backend auto_run uses for kernel k at size n (see the top of this file).
inline Backend auto_backend(const Kernel& k, std::size_t n) {
  if (const auto b = backend::Auto::routes().atlas(k.name, n); b && k.has(*b)) return *b;
  for (Backend b : kAutoFallbackOrder)
    if (k.has(b)) return b;
  return Backend::naive;
}

/// The implementation auto_run calls for kernel k at size n (resolve once, call many times).
inline RunFn auto_resolve(const Kernel& k, std::size_t n) {
  return k.run[index(auto_backend(k, n))];
}

/// Runs kernel k on buf with the routed backend for buf.shape.n.
inline void auto_run(const Kernel& k, Buffers& buf) {
  auto_resolve(k, buf.shape.n)(buf);
}

}  // namespace rosetta::atlas
