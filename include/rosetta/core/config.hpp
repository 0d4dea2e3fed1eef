// Build-time switches shared by every header.
#pragma once

// ROSETTA_CHECKED: bounds-checked element access (IndexError on a bad index).
// On by default in debug builds (NDEBUG undefined); define it to 0 or 1 to force.
#ifndef ROSETTA_CHECKED
#ifdef NDEBUG
#define ROSETTA_CHECKED 0
#else
#define ROSETTA_CHECKED 1
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ROSETTA_RESTRICT __restrict__
#define ROSETTA_INLINE inline __attribute__((always_inline))
#else
#define ROSETTA_RESTRICT
#define ROSETTA_INLINE inline
#endif
