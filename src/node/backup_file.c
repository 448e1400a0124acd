/*
 * backup_file.c — the backup file's header, `linkraft restore` and
 * `--force-new-cluster` (include/backup.h): the operations that write a
 * data directory offline, through the same storage API (src/storage) and
 * identity file (identity.h) a running node uses, so what they write is
 * exactly what a node reads at its start.
 */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "common/crc32c.h"
#include "node/identity.h"
#include "storage.h"
#include "store.h"

/* ---- The header -------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void backup_header_encode(const struct backup_header *h, uint8_t out[BACKUP_HEADER_BYTES])
{
    memset(out, 0, BACKUP_HEADER_BYTES);
    memcpy(out, BACKUP_MAGIC, 8);
    put32(out + 8, h->version);
    put64(out + 16, h->index);
    put64(out + 24, h->term);
    memcpy(out + 32, h->cluster, BACKUP_ID_BYTES);
    memcpy(out + 48, h->backup_id, BACKUP_ID_BYTES);
    put64(out + 64, h->db_size);
    put32(out + 72, h->db_crc);
    put32(out + 76, crc32c(out, 76));
}

int backup_header_decode(struct backup_header *h, const uint8_t *b, size_t len, char *err, size_t errcap)
{
    memset(h, 0, sizeof *h);
    if (len < BACKUP_HEADER_BYTES) {
        snprintf(err, errcap, "is not a linkraft backup: %zu bytes, shorter than its %d-byte header", len,
                 BACKUP_HEADER_BYTES);
        return -1;
    }
    if (memcmp(b, BACKUP_MAGIC, 8) != 0) {
        snprintf(err, errcap, "is not a linkraft backup (no magic \"%s\" at byte 0)", BACKUP_MAGIC);
        return -1;
    }
    if (get32(b + 76) != crc32c(b, 76)) {
        snprintf(err, errcap, "is damaged: its header's checksum (byte offset 76) does not match");
        return -1;
    }
    h->version = get32(b + 8);
    if (h->version != BACKUP_VERSION) {
        snprintf(err, errcap, "has backup format version %" PRIu32 "; this linkraft reads version %d%s", h->version,
                 BACKUP_VERSION, h->version > BACKUP_VERSION ? ": restore it with the newer linkraft that made it" : "");
        return -1;
    }
    if (get32(b + 12) != 0) {
        snprintf(err, errcap, "is damaged: reserved bytes at offset 12 are not zero");
        return -1;
    }
    h->index = get64(b + 16);
    h->term = get64(b + 24);
    memcpy(h->cluster, b + 32, BACKUP_ID_BYTES);
    memcpy(h->backup_id, b + 48, BACKUP_ID_BYTES);
    h->db_size = get64(b + 64);
    h->db_crc = get32(b + 72);
    if (h->index == 0 || h->db_size == 0) {
        snprintf(err, errcap, "is damaged: index %" PRIu64 ", database of %" PRIu64 " bytes", h->index, h->db_size);
        return -1;
    }
    return 0;
}

int backup_check_file(const char *path, struct backup_header *h, char *err, size_t errcap)
{
    char why[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "cannot open the backup %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t head[BACKUP_HEADER_BYTES];
    ssize_t got = pread(fd, head, sizeof head, 0);
    struct stat sb;
    int rc = -1;
    if (got < 0 || fstat(fd, &sb)) {
        snprintf(err, errcap, "cannot read the backup %s: %s", path, strerror(errno));
        goto out;
    }
    if (backup_header_decode(h, head, (size_t)got, why, sizeof why)) {
        snprintf(err, errcap, "the backup %s %s; nothing was written", path, why);
        goto out;
    }
    if ((uint64_t)sb.st_size != BACKUP_HEADER_BYTES + h->db_size) {
        snprintf(err, errcap, "the backup %s is %s: %lld bytes, its header says %" PRIu64 " (was the copy cut "
                 "short?); nothing was written", path, (uint64_t)sb.st_size < BACKUP_HEADER_BYTES + h->db_size
                 ? "truncated" : "too long", (long long)sb.st_size, BACKUP_HEADER_BYTES + h->db_size);
        goto out;
    }
    uint8_t *buf = malloc(1 << 20);
    if (!buf) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    uint32_t crc = 0;
    uint64_t off = BACKUP_HEADER_BYTES;
    while (off < (uint64_t)sb.st_size) {
        ssize_t r = pread(fd, buf, 1 << 20, (off_t)off);
        if (r <= 0) {
            snprintf(err, errcap, "cannot read the backup %s: %s", path, r ? strerror(errno) : "unexpected end");
            free(buf);
            goto out;
        }
        crc = crc32c_extend(crc, buf, (size_t)r);
        off += (uint64_t)r;
    }
    free(buf);
    if (crc != h->db_crc) {
        snprintf(err, errcap, "the backup %s is damaged: the database's CRC32C is %08" PRIx32 ", its header says "
                 "%08" PRIx32 "; nothing was written", path, crc, h->db_crc);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

/* ---- Restore ---------------------------------------------------------------- */

/* Whether dir is missing (*exists false) or empty. */
static int dir_usable(const char *dir, bool *exists, char *err, size_t errcap)
{
    *exists = false;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errcap, "cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    *exists = true;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            closedir(d);
            snprintf(err, errcap, "%s is not empty: restore writes a new data directory (move the old one "
                     "away first)", dir);
            return -1;
        }
    closedir(d);
    return 0;
}

/* Removes every file in dir (no subdirectories are made here), and dir
 * itself if we created it. */
static void remove_written(const char *dir, bool remove_dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4400];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    if (remove_dir)
        rmdir(dir);
}

/* The database at path and its -wal and -shm. */
static void remove_db(const char *path)
{
    char p[4400];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

/* Copies the backup's database (after the header) to path. */
static int extract_db(const char *backup_path, const char *path, uint64_t size, char *err, size_t errcap)
{
    int in = open(backup_path, O_RDONLY | O_CLOEXEC);
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    uint8_t *buf = malloc(1 << 20);
    int rc = -1;
    if (in < 0 || out < 0 || !buf) {
        snprintf(err, errcap, "cannot copy the database to %s: %s", path, buf ? strerror(errno) : "out of memory");
        goto out;
    }
    for (uint64_t off = 0; off < size;) {
        ssize_t r = pread(in, buf, 1 << 20, (off_t)(BACKUP_HEADER_BYTES + off));
        if (r <= 0 || write(out, buf, (size_t)r) != r) {
            snprintf(err, errcap, "cannot copy the database to %s: %s", path, strerror(errno));
            goto out;
        }
        off += (uint64_t)r;
    }
    if (fdatasync(out)) {
        snprintf(err, errcap, "cannot sync %s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(buf);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* The old cluster's member addresses would send the new nodes to its
 * machines (a node learns addresses from the database before the cluster
 * file): they go. Opened through the store, so page checksums, quick_check
 * and the schema version are checked as a node would. */
static int forget_old_members(const char *db, uint64_t want_index, char *err, size_t errcap)
{
    struct store *st = NULL;
    char why[768];
    if (store_open(db, &st, why, sizeof why)) {
        snprintf(err, errcap, "the backup's database does not open: %s", why);
        return -1;
    }
    if (store_applied(st) != want_index) {
        snprintf(err, errcap, "the backup's database holds index %" PRIu64 ", its header says %" PRIu64,
                 (uint64_t)store_applied(st), want_index);
        store_close(st);
        return -1;
    }
    char *msg = NULL;
    if (sqlite3_exec(store_db(st), "DELETE FROM members", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errcap, "cannot reset the member addresses: %s", msg ? msg : "?");
        sqlite3_free(msg);
        store_close(st);
        return -1;
    }
    store_close(st);
    return 0;
}

/* The new cluster's id: BLAKE2b-128 of the backup's id and the members
 * (id and raft address, in id order, as identity.c derives a bootstrap's). */
static void restored_cluster_id(uint8_t out[NET_ID_BYTES], const uint8_t backup_id[BACKUP_ID_BYTES],
                                const struct cluster *c)
{
    struct identity tmp;
    identity_new(&tmp, c, NULL, 0, false);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, NET_ID_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)"linkraft-restored-cluster-id", 28);
    crypto_generichash_update(&st, backup_id, BACKUP_ID_BYTES);
    crypto_generichash_update(&st, tmp.self.cluster, NET_ID_BYTES);
    crypto_generichash_final(&st, out, NET_ID_BYTES);
}

/* The snapshot at h->index holding the database file db, c's members the
 * voters, with hard state term 1. */
static int write_storage(const char *dir, const char *db, const struct backup_header *h, const struct cluster *c,
                         char *err, size_t errcap)
{
    struct storage *s = NULL;
    struct storage_state state;
    memset(&state, 0, sizeof state);
    struct storage_options so;
    storage_options_default(&so);
    char why[768];
    if (storage_open(dir, NULL, &so, &s, &state, why, sizeof why)) {
        snprintf(err, errcap, "cannot set up the log in %s: %s", dir, why);
        return -1;
    }
    storage_state_free(&state);
    struct raft_snapshot_meta meta = { .index = h->index, .term = 1 };
    for (size_t i = 0; i < c->n && i < RAFT_MAX_MEMBERS; i++)
        meta.config.members[meta.config.n++] = (struct raft_member){ c->members[i].id, RAFT_VOTER, 0 };
    char serr[512];
    if (storage_file_crc(db, &meta.size, &meta.crc, serr, sizeof serr)) {
        snprintf(err, errcap, "%s", serr);
        storage_close(s);
        return -1;
    }
    struct raft_hard_state hs = { .term = 1, .vote = 0 };
    int rc = storage_set_hard_state(s, &hs);
    if (!rc)
        rc = storage_sync(s);
    int fd = open(db, O_RDONLY | O_CLOEXEC);
    uint8_t *buf = malloc(1 << 20);
    if (fd < 0 || !buf) {
        snprintf(err, errcap, "cannot read %s: %s", db, buf ? strerror(errno) : "out of memory");
        free(buf);
        if (fd >= 0)
            close(fd);
        storage_close(s);
        return -1;
    }
    for (uint64_t off = 0; !rc && off < meta.size;) {
        ssize_t r = pread(fd, buf, 1 << 20, (off_t)off);
        if (r <= 0) {
            rc = STORAGE_EIO;
            break;
        }
        struct raft_snapshot_chunk ch = { .meta = meta, .offset = off, .len = (uint32_t)r, .data = buf };
        rc = storage_snapshot_write_chunk(s, &ch);
        off += (uint64_t)r;
    }
    close(fd);
    free(buf);
    if (!rc)
        rc = storage_snapshot_install(s, &meta);
    if (rc) {
        snprintf(err, errcap, "cannot write the snapshot into %s: %s", dir, storage_errmsg(s));
        storage_close(s);
        return -1;
    }
    storage_close(s);
    return 0;
}

int backup_restore(const char *backup_path, const char *data_dir, const struct cluster *c, raft_id id,
                   uint64_t *index, char *err, size_t errcap)
{
    if (!cluster_find(c, id)) {
        snprintf(err, errcap, "the cluster file has no line for node %llu", (unsigned long long)id);
        return 2;
    }
    struct backup_header h;
    if (backup_check_file(backup_path, &h, err, errcap))
        return 1;
    bool existed;
    if (dir_usable(data_dir, &existed, err, errcap))
        return 1;
    if (!existed && mkdir(data_dir, 0700)) {
        snprintf(err, errcap, "cannot create %s: %s", data_dir, strerror(errno));
        return 1;
    }
    char db[4200], copy[4200];
    snprintf(db, sizeof db, "%s/restore.db", data_dir);
    snprintf(copy, sizeof copy, "%s/restore.copy", data_dir);
    uint64_t copied = 0;
    char serr[768];
    if (extract_db(backup_path, db, h.db_size, err, errcap) || forget_old_members(db, h.index, err, errcap))
        goto fail;
    /* One file again (the edit went to a WAL), checksummed pages and all. */
    if (store_snapshot(db, copy, &copied, serr, sizeof serr) != STORE_OK) {
        snprintf(err, errcap, "cannot copy the backup's database: %s", serr);
        goto fail;
    }
    remove_db(db);
    if (copied != h.index) {
        snprintf(err, errcap, "the backup's database holds index %" PRIu64 ", its header says %" PRIu64, copied,
                 h.index);
        goto fail;
    }
    if (write_storage(data_dir, copy, &h, c, err, errcap))
        goto fail;
    unlink(copy);
    struct identity ident;
    identity_new(&ident, c, NULL, 0, false);
    restored_cluster_id(ident.self.cluster, h.backup_id, c);
    if (identity_save(data_dir, &ident, err, errcap))
        goto fail;
    *index = h.index;
    return 0;
fail:
    remove_written(data_dir, !existed);
    return 1;
}

/* ---- Force a new cluster -------------------------------------------------------- */

/* DIR/forced-cluster: the id of the cluster --force-new-cluster made here.
 * A node restarted with the flag still on, once it has members again, would
 * drop them and lead alone while they elect among themselves: two leaders
 * of one cluster. The file is what tells that restart from the first one. */
#define FORCED_NAME "forced-cluster"

static bool forced_here(const char *data_dir, const uint8_t cluster[NET_ID_BYTES])
{
    char path[4200], text[2 * NET_ID_BYTES + 2] = "", want[2 * NET_ID_BYTES + 1];
    snprintf(path, sizeof path, "%s/" FORCED_NAME, data_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool same = fgets(text, sizeof text, f) != NULL;
    fclose(f);
    sodium_bin2hex(want, sizeof want, cluster, NET_ID_BYTES);
    return same && !strncmp(text, want, 2 * NET_ID_BYTES);
}

static int mark_forced(const char *data_dir, const uint8_t cluster[NET_ID_BYTES], char *err, size_t errcap)
{
    char path[4200], tmp[4220], hex[2 * NET_ID_BYTES + 1];
    snprintf(path, sizeof path, "%s/" FORCED_NAME, data_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    sodium_bin2hex(hex, sizeof hex, cluster, NET_ID_BYTES);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex) && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    int dfd = ok && rename(tmp, path) == 0 ? open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    ok = dfd >= 0 && fsync(dfd) == 0;
    if (dfd >= 0)
        close(dfd);
    if (!ok) {
        snprintf(err, errcap, "--force-new-cluster: cannot write %.900s: %s", path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

int backup_force_new_cluster(const char *data_dir, raft_id self, int *changed, char *err, size_t errcap)
{
    *changed = 0;
    /* Read first: a damaged or newer identity refuses before anything changes. */
    struct identity ident;
    bool found;
    if (identity_load(data_dir, &ident, &found, err, errcap))
        return 1;
    struct storage *s = NULL;
    struct storage_state state;
    memset(&state, 0, sizeof state);
    struct storage_options so;
    storage_options_default(&so);
    char why[768];
    if (storage_open(data_dir, NULL, &so, &s, &state, why, sizeof why)) {
        snprintf(err, errcap, "--force-new-cluster: %s", why);
        return 1;
    }
    int rc = 1;
    if (!state.have_snapshot && state.n_entries == 0) {
        snprintf(err, errcap, "--force-new-cluster: %s holds no log and no snapshot: there is nothing to keep "
                 "(start from a backup with 'linkraft restore' instead)", data_dir);
        goto out;
    }
    /* The configuration now: the last one in the log, else the snapshot's. */
    struct raft_config cur = state.have_snapshot ? state.snapshot.config : (struct raft_config){ 0 };
    for (size_t i = 0; i < state.n_entries; i++)
        if (state.entries[i].type == RAFT_ENTRY_CONFIG)
            raft_config_decode(&cur, state.entries[i].data, state.entries[i].len);
    if (cur.n == 1 && cur.members[0].id == self && cur.members[0].role == RAFT_VOTER) {
        /* Already alone: a restart that kept the flag changes nothing (but
         * the mark, if a crash came between the identity and it). */
        rc = found && !forced_here(data_dir, ident.self.cluster) ? mark_forced(data_dir, ident.self.cluster, err,
                                                                                  errcap) : 0;
        goto out;
    }
    if (found && forced_here(data_dir, ident.self.cluster)) {
        snprintf(err, errcap, "--force-new-cluster: %s was already made a new cluster with this flag (%s/"
                 FORCED_NAME ") and has %u members again: forcing it again would drop them while they go on "
                 "electing among themselves. Remove --force-new-cluster from this node's command line. Only if "
                 "a majority of this new cluster is lost for good as well, delete %s/" FORCED_NAME " and force "
                 "again", data_dir, data_dir, cur.n, data_dir);
        goto out;
    }
    struct raft_config one = { .n = 1, .members = { { self, RAFT_VOTER, 0 } } };
    uint8_t buf[64];
    int len = raft_config_encode(&one, buf, sizeof buf);
    raft_index last = state.n_entries ? state.entries[state.n_entries - 1].index : state.snapshot.index;
    raft_term term = state.hard_state.term;
    if (state.n_entries && state.entries[state.n_entries - 1].term > term)
        term = state.entries[state.n_entries - 1].term;
    struct raft_entry e = { .term = term, .index = last + 1, .type = RAFT_ENTRY_CONFIG, .len = (uint32_t)len,
                            .data = buf };
    if (len < 0 || storage_append(s, &e, 1) || storage_sync(s)) {
        snprintf(err, errcap, "--force-new-cluster: cannot append the new configuration: %s", storage_errmsg(s));
        goto out;
    }
    /* A new cluster id: members of the old one (a machine thought lost that
     * comes back) are refused at the handshake instead of voting here. */
    if (!found)
        identity_new(&ident, NULL, NULL, 0, false);
    randombytes_buf(ident.self.cluster, NET_ID_BYTES);
    ident.self.cluster_known = true;
    ident.self.joined = false;
    ident.n_pins = 0;
    if (identity_save(data_dir, &ident, err, errcap) || mark_forced(data_dir, ident.self.cluster, err, errcap))
        goto out;
    *changed = 1;
    rc = 0;
out:
    storage_state_free(&state);
    storage_close(s);
    return rc;
}
