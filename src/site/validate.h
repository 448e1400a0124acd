/*
 * validate.h — the site's input rules (SPEC §4 "Limits and bad input") and
 * URL normalisation. Pure functions: no I/O, no clock (libidn2 allocates
 * and frees inside for international domain names); each
 * refusal comes with a sentence a user can act on.
 *
 * URL normalisation decides which submissions are "the same link": the
 * scheme's case, the host's case, a leading "www.", a default port, the
 * fragment and the order of query parameters do not matter, and neither
 * does http versus https (the normalized form has no scheme at all).
 */
#ifndef LINKRAFT_SITE_VALIDATE_H
#define LINKRAFT_SITE_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#define SITE_NAME_MIN 3
#define SITE_NAME_MAX 20
#define SITE_PASSWORD_MIN 8
#define SITE_PASSWORD_MAX 128
#define SITE_TITLE_MAX_CHARS 200
#define SITE_URL_MAX 2048
#define SITE_DOMAIN_CAP 256

/* Each returns NULL if s (len bytes) is acceptable, else a static message. */
const char *site_check_username(const char *s, size_t len);
const char *site_check_password(const char *s, size_t len);

/* Titles: surrounding ASCII whitespace is trimmed, then 1..200 characters of
 * valid UTF-8 with no control characters (C0, C1, U+2028/9), no bidi
 * overrides or isolates, and at least one visible character. On success
 * *start and *out_len give the trimmed title inside s. */
const char *site_check_title(const char *s, size_t len, size_t *start, size_t *out_len);

/* Whether p (already percent-decoded, NUL-terminated) is a path on this
 * site that is safe in a Location header: "/..." of printable ASCII
 * without spaces or backslashes, not starting "//". */
bool site_local_path_ok(const char *p);

struct site_url {
    char url[SITE_URL_MAX + 1];   /* as submitted, surrounding whitespace trimmed */
    char norm[SITE_URL_MAX + 1];  /* "//host[:port]/path[?sorted&query]" */
    char domain[SITE_DOMAIN_CAP]; /* host, lowercase, without "www.": for display */
};

/* Validates and normalises: http or https, a host (name, IPv4 or [IPv6]),
 * an optional port 1..65535, no user:password@, at most 2048 bytes, no
 * spaces or control characters. An international domain name is accepted
 * and converted to its ASCII (punycode) form in url, norm and domain. */
const char *site_parse_url(const char *s, size_t len, struct site_url *out);

/* The domain of a stored URL, in ASCII (never fails: "" if unparsable). */
void site_url_domain(const char *url, char *out, size_t cap);
/* A domain as people read it: ACE labels ("xn--...") back in Unicode. */
void site_domain_display(const char *domain, char *out, size_t cap);

#endif
