/*
 * names.c — human-readable names for the core's codes, roles and message
 * types, for logs, status pages and traces.
 */
#include "raft.h"

const char *raft_strerror(int rc)
{
    switch (rc) {
    case RAFT_OK: return "ok";
    case RAFT_ENOMEM: return "out of memory";
    case RAFT_ENOTLEADER: return "this node is not the leader";
    case RAFT_ENOLEADER: return "no leader is known right now";
    case RAFT_EBUSY: return "a leadership transfer or membership change is in progress";
    case RAFT_EINVAL: return "invalid argument";
    case RAFT_ENOTFOUND: return "no such member";
    case RAFT_EEXIST: return "already a member in that role";
    case RAFT_ETOOBIG: return "entry too large";
    case RAFT_ECORRUPT: return "persisted raft state is inconsistent";
    case RAFT_EMALFORMED: return "malformed message or record";
    case RAFT_ECHECKSUM: return "checksum mismatch";
    case RAFT_EVERSION: return "unknown format version";
    default: return "unknown error";
    }
}

const char *raft_role_name(enum raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRECANDIDATE: return "precandidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    default: return "unknown";
    }
}

const char *raft_msg_type_name(int type)
{
    static const char *const names[] = {
        [RAFT_MSG_APPEND] = "APPEND", [RAFT_MSG_APPEND_RESP] = "APPEND_RESP",
        [RAFT_MSG_VOTE] = "VOTE", [RAFT_MSG_VOTE_RESP] = "VOTE_RESP",
        [RAFT_MSG_PREVOTE] = "PREVOTE", [RAFT_MSG_PREVOTE_RESP] = "PREVOTE_RESP",
        [RAFT_MSG_HEARTBEAT] = "HEARTBEAT", [RAFT_MSG_HEARTBEAT_RESP] = "HEARTBEAT_RESP",
        [RAFT_MSG_SNAPSHOT] = "SNAPSHOT", [RAFT_MSG_SNAPSHOT_RESP] = "SNAPSHOT_RESP",
        [RAFT_MSG_TIMEOUT_NOW] = "TIMEOUT_NOW", [RAFT_MSG_READ_INDEX] = "READ_INDEX",
        [RAFT_MSG_READ_INDEX_RESP] = "READ_INDEX_RESP",
        [RAFT_MSG_SNAPSHOT_WANTED] = "SNAPSHOT_WANTED",
    };
    if (type < 1 || type > RAFT_MSG_TYPE_MAX)
        return "UNKNOWN";
    return names[type];
}
