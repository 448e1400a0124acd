/*
 * meta.c — the small files of a data directory that are replaced whole:
 * "hardstate" (term and vote) and "snapshot.meta" (which snapshot is
 * current). Each is written as NAME.tmp, fdatasynced, renamed over NAME and
 * the directory fsynced, so after a crash NAME is either the old or the new
 * version, never a mix. Each carries a magic, a format version and a CRC32C,
 * so a damaged file is refused at open with a message saying which file and
 * what is wrong instead of being believed (a wrong term or vote could let
 * this node vote twice in one term, §3.4).
 */
#include "storage/internal.h"

#include "common/crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int st_atomic_prepare(struct storage *s, const char *name, const uint8_t *buf, size_t n)
{
    char tmp[ST_PATH_MAX], tname[128];
    snprintf(tname, sizeof tname, "%s.tmp", name);
    st_path(s, tmp, tname);
    int fd = s->io->open(s->io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        int e = errno;
        return st_fail(s, st_errno_rc(e), "creating %s failed: %s", tmp, strerror(e));
    }
    int rc = st_write_all(s, fd, buf, n, 0, tmp, "writing a new version");
    if (rc == STORAGE_OK)
        rc = st_sync_fd(s, fd, tmp, "making a new version durable");
    s->io->close(s->io->ctx, fd);
    if (rc != STORAGE_OK)
        st_atomic_abort(s, name);
    return rc;
}

int st_atomic_commit(struct storage *s, const char *name)
{
    char tmp[ST_PATH_MAX], dst[ST_PATH_MAX], tname[128];
    snprintf(tname, sizeof tname, "%s.tmp", name);
    st_path(s, tmp, tname);
    st_path(s, dst, name);
    if (s->io->rename(s->io->ctx, tmp, dst) != 0) {
        int e = errno;
        int rc = st_fail(s, st_errno_rc(e), "renaming %s over %s failed: %s", tmp, dst, strerror(e));
        st_atomic_abort(s, name);
        return rc;
    }
    return st_sync_dir(s, "making a replaced file durable");
}

void st_atomic_abort(struct storage *s, const char *name)
{
    char tmp[ST_PATH_MAX], tname[128];
    snprintf(tname, sizeof tname, "%s.tmp", name);
    st_path(s, tmp, tname);
    s->io->unlink(s->io->ctx, tmp); /* best effort: open removes leftovers too */
}

int st_atomic_write(struct storage *s, const char *name, const uint8_t *buf, size_t n)
{
    int rc = st_atomic_prepare(s, name, buf, n);
    return rc ? rc : st_atomic_commit(s, name);
}

/* ---- hardstate ---------------------------------------------------------- */

void st_hs_encode(const struct raft_hard_state *hs, uint8_t out[ST_HS_BYTES])
{
    memset(out, 0, ST_HS_BYTES);
    memcpy(out, ST_HS_MAGIC, 8);
    st_put32(out + 8, ST_FORMAT_VERSION);
    st_put64(out + 16, hs->term);
    st_put64(out + 24, hs->vote);
    st_put32(out + 36, crc32c(out, 36));
}

int st_hs_load(struct storage *s, struct raft_hard_state *hs)
{
    char path[ST_PATH_MAX];
    st_path(s, path, ST_HS_NAME);
    uint8_t b[ST_HS_BYTES];
    size_t len = 0;
    int rc = st_read_small(s, path, b, sizeof b, &len);
    if (rc == 1)
        return 1;
    if (rc == STORAGE_ECORRUPT)
        return st_fail(s, rc, "hard state file %s is damaged: longer than %u bytes; %s", path,
                       ST_HS_BYTES, st_restore_advice());
    if (rc)
        return rc;
    if (len != ST_HS_BYTES)
        return st_fail(s, STORAGE_ECORRUPT, "hard state file %s is damaged: %zu bytes instead of %u; %s",
                       path, len, ST_HS_BYTES, st_restore_advice());
    if (memcmp(b, ST_HS_MAGIC, 8) != 0)
        return st_fail(s, STORAGE_ECORRUPT, "hard state file %s is damaged: bad magic at byte offset 0; %s",
                       path, st_restore_advice());
    if (st_get32(b + 36) != crc32c(b, 36))
        return st_fail(s, STORAGE_ECORRUPT,
                       "hard state file %s is damaged: checksum at byte offset 36 does not match; %s", path,
                       st_restore_advice());
    if (st_get32(b + 8) != ST_FORMAT_VERSION)
        return st_fail(s, STORAGE_ECORRUPT,
                       "hard state file %s has format version %u at byte offset 8; this build reads "
                       "version %u (run the linkraft version that wrote it)",
                       path, st_get32(b + 8), ST_FORMAT_VERSION);
    if (st_get32(b + 12) != 0 || st_get32(b + 32) != 0)
        return st_fail(s, STORAGE_ECORRUPT, "hard state file %s is damaged: reserved bytes are not zero; %s",
                       path, st_restore_advice());
    hs->term = st_get64(b + 16);
    hs->vote = st_get64(b + 24);
    /* No part of linkraft makes such a term (RAFT_MAX_TERM); one on disk
     * was forged or written by a build without the cap, and a node holding
     * it could never be elected again. */
    if (hs->term > RAFT_MAX_TERM)
        return st_fail(s, STORAGE_ECORRUPT,
                       "hard state file %s holds term %llu at byte offset 16, at or above 2^63, which no "
                       "linkraft node adopts; %s",
                       path, (unsigned long long)hs->term, st_restore_advice());
    return STORAGE_OK;
}

/* ---- snapshot.meta -------------------------------------------------------- */

size_t st_snapmeta_encode(const struct raft_snapshot_meta *m, uint8_t out[ST_SNAPMETA_MAX])
{
    memset(out, 0, ST_SNAPMETA_MAX);
    memcpy(out, ST_SNAPMETA_MAGIC, 8);
    st_put32(out + 8, ST_FORMAT_VERSION);
    st_put64(out + 16, m->index);
    st_put64(out + 24, m->term);
    st_put64(out + 32, m->size);
    st_put32(out + 40, m->crc);
    int clen = raft_config_encode(&m->config, out + ST_SNAPMETA_FIXED, ST_SNAPMETA_MAX - ST_SNAPMETA_FIXED - 4);
    if (clen < 0)
        clen = 0; /* unreachable: the buffer fits RAFT_MAX_MEMBERS */
    st_put32(out + 12, (uint32_t)clen);
    size_t n = ST_SNAPMETA_FIXED + (size_t)clen;
    st_put32(out + n, crc32c(out, n));
    return n + 4;
}

int st_snapmeta_load(struct storage *s, struct raft_snapshot_meta *m, uint64_t *file_bytes)
{
    char path[ST_PATH_MAX];
    st_path(s, path, ST_SNAPMETA_NAME);
    uint8_t b[ST_SNAPMETA_MAX];
    size_t len = 0;
    int rc = st_read_small(s, path, b, sizeof b, &len);
    if (rc == 1)
        return 1;
    if (rc == STORAGE_ECORRUPT)
        return st_fail(s, rc, "snapshot metadata %s is damaged: longer than %u bytes; %s", path,
                       ST_SNAPMETA_MAX, st_restore_advice());
    if (rc)
        return rc;
    if (len < ST_SNAPMETA_FIXED + 4)
        return st_fail(s, STORAGE_ECORRUPT, "snapshot metadata %s is damaged: only %zu bytes; %s", path, len,
                       st_restore_advice());
    if (memcmp(b, ST_SNAPMETA_MAGIC, 8) != 0)
        return st_fail(s, STORAGE_ECORRUPT, "snapshot metadata %s is damaged: bad magic at byte offset 0; %s",
                       path, st_restore_advice());
    uint32_t clen = st_get32(b + 12);
    if (clen > len || len != ST_SNAPMETA_FIXED + (size_t)clen + 4)
        return st_fail(s, STORAGE_ECORRUPT,
                       "snapshot metadata %s is damaged: configuration length %u at byte offset 12 does "
                       "not fit the file's %zu bytes; %s", path, clen, len, st_restore_advice());
    size_t n = ST_SNAPMETA_FIXED + clen;
    if (st_get32(b + n) != crc32c(b, n))
        return st_fail(s, STORAGE_ECORRUPT,
                       "snapshot metadata %s is damaged: checksum at byte offset %zu does not match; %s", path,
                       n, st_restore_advice());
    if (st_get32(b + 8) != ST_FORMAT_VERSION)
        return st_fail(s, STORAGE_ECORRUPT,
                       "snapshot metadata %s has format version %u at byte offset 8; this build reads "
                       "version %u (run the linkraft version that wrote it)",
                       path, st_get32(b + 8), ST_FORMAT_VERSION);
    memset(m, 0, sizeof *m);
    m->index = st_get64(b + 16);
    m->term = st_get64(b + 24);
    m->size = st_get64(b + 32);
    m->crc = st_get32(b + 40);
    if (st_get32(b + 44) != 0 || m->index == 0 || m->term == 0)
        return st_fail(s, STORAGE_ECORRUPT,
                       "snapshot metadata %s is damaged: index %llu, term %llu or reserved bytes are "
                       "invalid; %s", path, (unsigned long long)m->index, (unsigned long long)m->term,
                       st_restore_advice());
    if (raft_config_decode(&m->config, b + ST_SNAPMETA_FIXED, clen) != RAFT_OK)
        return st_fail(s, STORAGE_ECORRUPT,
                       "snapshot metadata %s is damaged: the configuration at byte offset %u does not "
                       "decode; %s", path, ST_SNAPMETA_FIXED, st_restore_advice());
    *file_bytes = len;
    return STORAGE_OK;
}
