/*
 * identity.c — DIR/identity: the cluster id, this directory's incarnation
 * and the pins (identity.h says what they are for). The file is text, one
 * field a line, so an operator can read it:
 *
 *   linkraft-identity 1
 *   cluster 5f0c...(32 hex) | cluster unknown
 *   incarnation 9a41...(32 hex)
 *   joined 0|1
 *   pin <member id> <32 hex>        (zero or more)
 *
 * The cluster id is derived, not drawn: every member of a new cluster
 * bootstraps on its own from the same cluster file, with no one to agree
 * with, so each computes BLAKE2b-128("linkraft-cluster-id" || secret ||
 * each member's id and raft address, in id order). Members of one cluster
 * agree; a cluster with another file or another secret has another id. A
 * --join node learns the id from the first member it completes a handshake
 * with (authenticated by the secret).
 */
#include "node/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

static void to_hex(const uint8_t *b, char *out)
{
    for (int i = 0; i < NET_ID_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int from_hex(const char *s, uint8_t *b)
{
    if (strlen(s) != 2 * NET_ID_BYTES)
        return -1;
    for (int i = 0; i < NET_ID_BYTES; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        b[i] = (uint8_t)v;
    }
    return 0;
}

void identity_new(struct identity *id, const struct cluster *members, const uint8_t *secret, size_t secret_len,
                  bool joined)
{
    memset(id, 0, sizeof *id);
    randombytes_buf(id->self.incarnation, NET_ID_BYTES);
    id->self.joined = joined;
    if (joined || !members)
        return;
    /* Members in id order, whatever the file's order. */
    raft_id ids[CLUSTER_MAX_MEMBERS];
    size_t n = 0;
    for (size_t i = 0; i < members->n && n < CLUSTER_MAX_MEMBERS; i++)
        ids[n++] = members->members[i].id;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
            raft_id t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, NET_ID_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)"linkraft-cluster-id", 20);
    uint8_t len[4] = { (uint8_t)secret_len, (uint8_t)(secret_len >> 8), 0, 0 };
    crypto_generichash_update(&st, len, sizeof len);
    if (secret)
        crypto_generichash_update(&st, secret, secret_len);
    for (size_t i = 0; i < n; i++) {
        const struct cluster_member *m = cluster_find(members, ids[i]);
        uint8_t b[8];
        for (int k = 0; k < 8; k++)
            b[k] = (uint8_t)(ids[i] >> (8 * k));
        crypto_generichash_update(&st, b, sizeof b);
        crypto_generichash_update(&st, (const uint8_t *)m->raft_addr, strlen(m->raft_addr) + 1);
    }
    crypto_generichash_final(&st, id->self.cluster, NET_ID_BYTES);
    id->self.cluster_known = true;
}

bool identity_exists(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/identity", dir);
    return access(path, F_OK) == 0 || errno != ENOENT;
}

int identity_load(const char *dir, struct identity *id, bool *found, char *err, size_t errcap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/identity", dir);
    memset(id, 0, sizeof *id);
    *found = false;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errcap, "cannot open %.900s: %s", path, strerror(errno));
        return -1;
    }
    char line[256], a[128], b[128];
    int lineno = 0, have = 0;
    unsigned long long pid;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, "linkraft-identity 1\n") != 0)
                goto bad;
        } else if (sscanf(line, "cluster %127s", a) == 1) {
            if (!strcmp(a, "unknown"))
                id->self.cluster_known = false;
            else if (from_hex(a, id->self.cluster) == 0)
                id->self.cluster_known = true;
            else
                goto bad;
            have |= 1;
        } else if (sscanf(line, "incarnation %127s", a) == 1) {
            if (from_hex(a, id->self.incarnation))
                goto bad;
            have |= 2;
        } else if (sscanf(line, "joined %127s", a) == 1) {
            if (strcmp(a, "0") && strcmp(a, "1"))
                goto bad;
            id->self.joined = a[0] == '1';
            have |= 4;
        } else if (sscanf(line, "pin %llu %127s", &pid, b) == 2) {
            if (pid == 0 || id->n_pins == IDENTITY_MAX_PINS)
                goto bad;
            id->pins[id->n_pins].id = pid;
            if (from_hex(b, id->pins[id->n_pins].incarnation))
                goto bad;
            id->n_pins++;
        } else {
            goto bad;
        }
    }
    fclose(f);
    if (have != 7) {
        lineno = 0;
        f = NULL;
        goto bad;
    }
    *found = true;
    return 0;
bad:
    if (f)
        fclose(f);
    snprintf(err, errcap, "%.900s is damaged (line %d): it says which cluster this node belongs to. Restore "
             "it from a backup of this directory, or move the directory away and start this node with --join, "
             "then add it back with 'linkraft member add'", path, lineno);
    return -1;
}

int identity_save(const char *dir, const struct identity *id, char *err, size_t errcap)
{
    char path[4200], tmp[4220];
    snprintf(path, sizeof path, "%s/identity", dir);
    snprintf(tmp, sizeof tmp, "%s/identity.tmp", dir);
    char text[IDENTITY_TEXT_MAX], hex[2 * NET_ID_BYTES + 1];
    size_t len = 0;
    len += (size_t)snprintf(text + len, sizeof text - len, "linkraft-identity 1\n");
    if (id->self.cluster_known) {
        to_hex(id->self.cluster, hex);
        len += (size_t)snprintf(text + len, sizeof text - len, "cluster %s\n", hex);
    } else {
        len += (size_t)snprintf(text + len, sizeof text - len, "cluster unknown\n");
    }
    to_hex(id->self.incarnation, hex);
    len += (size_t)snprintf(text + len, sizeof text - len, "incarnation %s\njoined %d\n", hex, id->self.joined);
    for (size_t i = 0; i < id->n_pins; i++) {
        to_hex(id->pins[i].incarnation, hex);
        len += (size_t)snprintf(text + len, sizeof text - len, "pin %llu %s\n",
                                (unsigned long long)id->pins[i].id, hex);
    }
    /* Not O_TRUNC: the temporary file is the reserve (identity_reserve),
     * written over in place and cut to size, so that no new block is needed. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errcap, "cannot create %.900s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = pwrite(fd, text, len, 0) == (ssize_t)len && ftruncate(fd, (off_t)len) == 0 && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errcap, "cannot write %.900s: %s", path, strerror(ok ? errno : saved));
        unlink(tmp);
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        snprintf(err, errcap, "cannot fsync %.900s: %s", dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    close(dfd);
    identity_reserve(dir); /* the blocks just freed (the old file, the cut tail) make the next one */
    return 0;
}

int identity_reserve(const char *dir)
{
    char tmp[4220];
    snprintf(tmp, sizeof tmp, "%s/identity.tmp", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = posix_fallocate(fd, 0, IDENTITY_TEXT_MAX);
    close(fd);
    return rc == 0 ? 0 : -1;
}

int identity_check(struct identity *id, raft_id peer, const struct net_identity *theirs, bool is_voter,
                   bool *changed)
{
    *changed = false;
    if (theirs->cluster_known && id->self.cluster_known &&
        memcmp(theirs->cluster, id->self.cluster, NET_ID_BYTES) != 0)
        return NET_CHECK_OTHER_CLUSTER;
    struct identity_pin *pin = NULL;
    for (size_t i = 0; i < id->n_pins; i++)
        if (id->pins[i].id == peer)
            pin = &id->pins[i];
    if (pin && memcmp(pin->incarnation, theirs->incarnation, NET_ID_BYTES) != 0 && (!theirs->joined || is_voter))
        return NET_CHECK_REPLACED;
    if (!pin) {
        if (id->n_pins == IDENTITY_MAX_PINS)
            return NET_CHECK_INTERNAL;
        pin = &id->pins[id->n_pins++];
        pin->id = peer;
        *changed = true;
    }
    if (memcmp(pin->incarnation, theirs->incarnation, NET_ID_BYTES) != 0) {
        memcpy(pin->incarnation, theirs->incarnation, NET_ID_BYTES); /* a --join node's new directory */
        *changed = true;
    }
    if (theirs->cluster_known && !id->self.cluster_known) {
        memcpy(id->self.cluster, theirs->cluster, NET_ID_BYTES);
        id->self.cluster_known = true;
        *changed = true;
    }
    return NET_CHECK_OK;
}
