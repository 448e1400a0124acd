/*
 * tls.c — HTTPS for the HTTP server (SPEC §3: the gateway's --tls-cert and
 * --tls-key): OpenSSL from Debian, driven through memory BIOs so that the
 * socket stays libuv's and nothing else in src/http changes shape.
 *
 *   ciphertext from the socket -> BIO_write(rbio) -> SSL_read -> plaintext
 *   to http_conn_input, exactly as if it had come from the socket;
 *   every write of plaintext -> SSL_write -> the bytes OpenSSL left in
 *   wbio -> one uv_write of a buffer owned by that write.
 *
 * Every byte a connection sends goes through http_conn_write (here), also
 * without TLS: it is the one seam between the connection and its socket.
 * Handshake messages, session tickets and alerts are flushed from wbio
 * after each OpenSSL call, in order, by writes of their own.
 *
 * Policy: TLS 1.2 and 1.3 only; for 1.2 only ECDHE with AEAD ciphers
 * (forward secrecy); no renegotiation (a client could make the server do a
 * handshake's work at will); no compression (CRIME). Buffers are released
 * between records, so idle TLS connections cost little memory.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

static void openssl_error(char *err, size_t errcap, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    snprintf(err, errcap, "%s%s%s: %s", what, file ? " " : "", file ? file : "", buf);
}

int http_tls_ctx_create(const char *cert_file, const char *key_file, struct ssl_ctx_st **out, char *err,
                        size_t errcap)
{
    *out = NULL;
    if (!cert_file || !key_file) {
        snprintf(err, errcap, "https needs both a certificate and a private key file");
        return -1;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        openssl_error(err, errcap, "cannot create a TLS context", NULL);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20")) {
        openssl_error(err, errcap, "cannot set the TLS 1.2 ciphers", NULL);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        openssl_error(err, errcap, "cannot load the certificate (PEM, leaf first) from", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        openssl_error(err, errcap, "cannot load the private key (PEM, unencrypted) from", key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        openssl_error(err, errcap, "the private key does not match the certificate", key_file);
        goto fail;
    }
    *out = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -1;
}

void http_tls_ctx_free(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

int http_tls_check(const char *cert_file, const char *key_file, char *err, size_t errcap)
{
    SSL_CTX *ctx;
    if (http_tls_ctx_create(cert_file, key_file, &ctx, err, errcap) < 0)
        return -1;
    SSL_CTX_free(ctx);
    return 0;
}

int http_tls_conn_init(struct http_conn *c)
{
    SSL *ssl = SSL_new(c->srv->tls_ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (!ssl || !rbio || !wbio) {
        SSL_free(ssl);
        BIO_free(rbio);
        BIO_free(wbio);
        return -1;
    }
    SSL_set_bio(ssl, rbio, wbio); /* ssl owns both now */
    SSL_set_accept_state(ssl);
    c->ssl = ssl;
    c->tls = true;
    return 0;
}

void http_tls_conn_free(struct http_conn *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
}

/* ---- the write seam ------------------------------------------------------ */

/* A write of ciphertext: its buffer, and the caller's request and callback
 * (NULL for bytes OpenSSL produced on its own: handshake, tickets, alerts). */
struct tls_write {
    uv_write_t w;
    struct http_conn *c;
    uv_write_t *orig;
    uv_write_cb cb;
    char *data;
};

static void on_tls_write(uv_write_t *w, int status)
{
    struct tls_write *t = w->data;
    struct http_conn *c = t->c;
    uv_write_t *orig = t->orig;
    uv_write_cb cb = t->cb;
    free(t->data);
    free(t);
    if (cb) {
        cb(orig, status);
        return;
    }
    c->reqs_pending--;
    if (c->closing) http_conn_maybe_free(c);
    else if (status < 0) http_conn_close(c);
}

/* Moves what OpenSSL has written to wbio into a write of its own. */
static int tls_send_pending(struct http_conn *c, uv_write_t *orig, uv_write_cb cb)
{
    BIO *wbio = SSL_get_wbio(c->ssl);
    size_t n = (size_t)BIO_ctrl_pending(wbio);
    if (!n && !cb) return 0;
    struct tls_write *t = malloc(sizeof *t);
    char *data = n ? malloc(n) : NULL;
    if (!t || (n && !data) || (n && BIO_read(wbio, data, (int)n) != (int)n)) {
        free(t);
        free(data);
        return UV_ENOMEM;
    }
    t->w.data = t;
    t->c = c;
    t->orig = orig;
    t->cb = cb;
    t->data = data;
    uv_buf_t b = uv_buf_init(data ? data : "", (unsigned)n);
    int rc = uv_write(&t->w, (uv_stream_t *)&c->tcp, &b, 1, on_tls_write);
    if (rc < 0) {
        free(data);
        free(t);
        return rc;
    }
    if (!cb) c->reqs_pending++;
    return 0;
}

int http_conn_write(struct http_conn *c, uv_write_t *req, const uv_buf_t *bufs, unsigned nbufs, uv_write_cb cb)
{
    if (!c->ssl)
        return uv_write(req, (uv_stream_t *)&c->tcp, bufs, nbufs, cb);
    for (unsigned i = 0; i < nbufs; i++) {
        if (!bufs[i].len) continue;
        /* Memory BIOs never refuse: SSL_write takes everything at once. */
        if (SSL_write(c->ssl, bufs[i].base, (int)bufs[i].len) <= 0) {
            ERR_clear_error();
            return UV_EPROTO;
        }
    }
    return tls_send_pending(c, req, cb);
}

void http_tls_close_notify(struct http_conn *c)
{
    if (!c->ssl || !SSL_is_init_finished(c->ssl)) return;
    SSL_shutdown(c->ssl);
    ERR_clear_error();
    tls_send_pending(c, NULL, NULL);
}

/* ---- reading --------------------------------------------------------------- */

void http_tls_input(struct http_conn *c, const char *data, size_t len)
{
    struct http_server *s = c->srv;
    if (BIO_write(SSL_get_rbio(c->ssl), data, (int)len) != (int)len) {
        http_conn_close(c);
        return;
    }
    /* Decrypt everything now: once reading stops (pipeline bound) no new
     * socket data would come to wake up plaintext left inside OpenSSL.
     * http_conn_input keeps what it cannot parse yet. The shared read
     * buffer is free again: its ciphertext is in rbio. */
    for (;;) {
        int n = SSL_read(c->ssl, s->rbuf, (int)s->rbuf_cap);
        if (n > 0) {
            if (tls_send_pending(c, NULL, NULL) < 0) { http_conn_close(c); return; }
            if (c->lingering) continue;
            http_conn_input(c, s->rbuf, (size_t)n);
            if (c->closing) return;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        ERR_clear_error();
        /* Handshake replies, tickets, or the alert of a failure. */
        if (tls_send_pending(c, NULL, NULL) < 0) { http_conn_close(c); return; }
        if (e == SSL_ERROR_WANT_READ) return;
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* close_notify: the client will send nothing more. */
            c->read_eof = true;
            http_conn_read_stop(c);
            if (c->lingering) http_conn_close(c);
            else http_conn_eof(c);
            return;
        }
        /* Not TLS, a failed handshake, a bad record: the alert (if any) is
         * on its way; nothing of the connection can be trusted. */
        s->stats.tls_failed++;
        http_conn_linger(c);
        return;
    }
}
