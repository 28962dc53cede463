/* sanitizers: SHOJI_SANITIZED is 1 in builds with AddressSanitizer (clang or gcc), whose
 * run-time needs a little more from a sandbox (the monitor's jail and seccomp filter, shojid's
 * image jobs). */
#ifndef SHOJI_COMMON_SANITIZERS_H
#define SHOJI_COMMON_SANITIZERS_H

#if defined(__SANITIZE_ADDRESS__)
#define SHOJI_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHOJI_SANITIZED 1
#endif
#endif
#ifndef SHOJI_SANITIZED
#define SHOJI_SANITIZED 0
#endif

#endif
