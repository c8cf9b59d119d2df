/*
 * password.c: argon2id / bcrypt hashing and verification, and the per-loop pool that runs them on
 * libuv's thread pool.
 *
 * The pool holds no handle. A job is either QUEUED (on p->queued, FIFO, waiting for one of the
 * max_inflight slots) or RUNNING (submitted with uv_queue_work, on p->running). Queued jobs are
 * started only from pump(), which runs after a completion or at submission time, so the number
 * of this loop's jobs occupying libuv threads never exceeds max_inflight and a login flood on one
 * loop cannot starve the fs and DNS work of the others.
 *
 * Closing: queued jobs are failed at once; running ones are uv_cancel'ed, which only succeeds for
 * work libuv has not picked up yet (it then completes with UV_ECANCELED); work already on a thread
 * cannot be interrupted and completes normally. The pool is freed when the last one completes.
 * User callbacks may re-enter the pool (submit or close), so completion never frees the pool while
 * a callback is on the stack (`dispatching`).
 */
#include "auth/password.h"

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "core/alloc.h"
#include "core/list.h"

/* A password nobody knows (32 random bytes, discarded), hashed with the current parameters. If
 * the parameters change, regenerate it: test_password checks that they match. */
static const char dummy_hash[] =
    "$argon2id$v=19$m=19456,t=2,p=1$+eJ6bWp0GGAdkO1zfeLUdQ$t6NpY2pbplVe8PMcUQW3ywb2Op7RhR+rkDds49jCxog";

const char *ldg_password_dummy_hash(void)
{
    return dummy_hash;
}

int ldg_password_hash_sync(const char *pw, char *out, size_t cap)
{
    if (!pw || !out)
        return -EINVAL;
    size_t pwlen = strnlen(pw, LDG_PASSWORD_MAX_BYTES + 1);
    if (pwlen > LDG_PASSWORD_MAX_BYTES)
        return -EINVAL;
    size_t need = argon2_encodedlen(LDG_PASSWORD_ARGON2_T, LDG_PASSWORD_ARGON2_M_KIB, LDG_PASSWORD_ARGON2_P,
                                    LDG_PASSWORD_SALT_BYTES, LDG_PASSWORD_TAG_BYTES, Argon2_id);
    if (cap < need)
        return -ENOSPC;
    unsigned char salt[LDG_PASSWORD_SALT_BYTES];
    if (RAND_bytes(salt, sizeof salt) != 1)
        return -EIO;
    int r = argon2id_hash_encoded(LDG_PASSWORD_ARGON2_T, LDG_PASSWORD_ARGON2_M_KIB, LDG_PASSWORD_ARGON2_P, pw,
                                  pwlen, salt, sizeof salt, LDG_PASSWORD_TAG_BYTES, out, cap);
    switch (r) {
    case ARGON2_OK:
        return 0;
    case ARGON2_MEMORY_ALLOCATION_ERROR:
        return -ENOMEM;
    case ARGON2_ENCODING_FAIL:
        return -ENOSPC;
    default:
        return -EINVAL;
    }
}

/* Reads "<key>=<decimal>" at *s and advances past it. Values are bounded by `max`. */
static bool parse_param(const char **s, char key, unsigned long max, unsigned long *out)
{
    const char *p = *s;
    if (p[0] != key || p[1] != '=')
        return false;
    p += 2;
    if (*p < '0' || *p > '9')
        return false;
    unsigned long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > max)
            return false;
        p++;
    }
    *out = v;
    *s = p;
    return true;
}

/*
 * The cost parameters of a stored hash decide how much memory and CPU a verify spends, and they
 * come from the database (possibly from an import). Check them before letting libargon2 allocate.
 * Form: $argon2id$[v=<n>$]m=<n>,t=<n>,p=<n>$<salt>$<tag>; the rest is left to libargon2's decoder.
 */
static bool argon2_params_ok(const char *encoded)
{
    const char *s = encoded + strlen("$argon2id$");
    unsigned long v, m, t, par;
    if (s[0] == 'v') {
        if (!parse_param(&s, 'v', 0xff, &v) || *s++ != '$')
            return false;
    }
    if (!parse_param(&s, 'm', LDG_PASSWORD_ARGON2_MAX_M_KIB, &m) || *s++ != ',')
        return false;
    if (!parse_param(&s, 't', LDG_PASSWORD_ARGON2_MAX_T, &t) || *s++ != ',')
        return false;
    if (!parse_param(&s, 'p', LDG_PASSWORD_ARGON2_MAX_P, &par) || *s != '$')
        return false;
    return t >= 1 && par >= 1;
}

static int verify_argon2id(const char *pw, size_t pwlen, const char *encoded)
{
    if (!argon2_params_ok(encoded))
        return -EINVAL;
    /* argon2_verify recomputes the tag and compares it in constant time (argon2_compare). */
    int r = argon2id_verify(encoded, pw, pwlen);
    switch (r) {
    case ARGON2_OK:
        return 1;
    case ARGON2_VERIFY_MISMATCH:
        return 0;
    case ARGON2_MEMORY_ALLOCATION_ERROR:
        return -ENOMEM;
    default:
        return -EINVAL;
    }
}

/* $2b$NN$ + 22 salt chars + 31 hash chars. */
#define BCRYPT_LEN 60

static int verify_bcrypt(const char *pw, const char *encoded)
{
    if (strlen(encoded) != BCRYPT_LEN || encoded[3] != '$' || encoded[6] != '$')
        return -EINVAL;
    if (encoded[4] < '0' || encoded[4] > '9' || encoded[5] < '0' || encoded[5] > '9')
        return -EINVAL;
    int cost = (encoded[4] - '0') * 10 + (encoded[5] - '0');
    if (cost < 4 || cost > LDG_PASSWORD_BCRYPT_MAX_COST)
        return -EINVAL;
    /* struct crypt_data is ~32 KiB: keep it off the thread-pool stack. crypt_rn must see it zeroed. */
    struct crypt_data *cd = ldg_calloc(1, sizeof *cd);
    const char *res = crypt_rn(pw, encoded, cd, (int)sizeof *cd);
    int r;
    if (!res || strlen(res) != BCRYPT_LEN)
        r = -EINVAL;
    else
        r = CRYPTO_memcmp(res, encoded, BCRYPT_LEN) == 0 ? 1 : 0;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return r;
}

int ldg_password_verify_sync(const char *pw, const char *encoded)
{
    if (!pw || !encoded)
        return -EINVAL;
    size_t pwlen = strnlen(pw, LDG_PASSWORD_MAX_BYTES + 1);
    if (pwlen > LDG_PASSWORD_MAX_BYTES)
        return -EINVAL;
    if (strncmp(encoded, "$argon2id$", 10) == 0)
        return verify_argon2id(pw, pwlen, encoded);
    if (strncmp(encoded, "$2b$", 4) == 0 || strncmp(encoded, "$2a$", 4) == 0 ||
        strncmp(encoded, "$2y$", 4) == 0)
        return verify_bcrypt(pw, encoded);
    return -EINVAL;
}

/* ---- pool ---- */

enum job_kind { JOB_HASH, JOB_VERIFY, JOB_DUMMY };

struct job {
    uv_work_t work;                 /* work.data unused; container_of */
    struct ldg_list_node node;      /* on pool->queued or pool->running */
    struct ldg_password_pool *pool; /* borrowed */
    enum job_kind kind;
    char *pw; /* owned; wiped before free */
    size_t pwlen;
    char *encoded;                    /* owned (verify), NULL for hash; dummy points at static storage */
    int result;                       /* written on the pool thread, read in on_after_work */
    char hash[LDG_PASSWORD_HASH_MAX]; /* hash output */
    ldg_password_cb cb;
    void *ud;
};

struct ldg_password_pool {
    uv_loop_t *loop; /* borrowed */
    unsigned max_inflight, max_queued;
    struct ldg_list queued;  /* struct job, FIFO */
    struct ldg_list running; /* struct job submitted with uv_queue_work */
    uint64_t rejected;
    unsigned dispatching; /* user callbacks on the stack: freeing is deferred until 0 */
    bool closing;
    ldg_password_closed_cb on_closed;
    void *closed_ud;
};

struct ldg_password_pool *ldg_password_pool_new(uv_loop_t *loop, unsigned max_inflight, unsigned max_queued)
{
    LDG_ASSERT(loop && max_inflight >= 1);
    struct ldg_password_pool *p = ldg_calloc(1, sizeof *p);
    p->loop = loop;
    p->max_inflight = max_inflight;
    p->max_queued = max_queued;
    ldg_list_init(&p->queued);
    ldg_list_init(&p->running);
    return p;
}

static void job_free(struct job *j)
{
    if (j->pw) {
        explicit_bzero(j->pw, j->pwlen);
        free(j->pw);
    }
    if (j->kind == JOB_VERIFY)
        free(j->encoded);
    explicit_bzero(j, sizeof *j);
    free(j);
}

static void on_work(uv_work_t *w)
{
    struct job *j = ldg_container_of(w, struct job, work);
    switch (j->kind) {
    case JOB_HASH:
        j->result = ldg_password_hash_sync(j->pw, j->hash, sizeof j->hash);
        break;
    case JOB_VERIFY:
        j->result = ldg_password_verify_sync(j->pw, j->encoded);
        break;
    case JOB_DUMMY: {
        int r = ldg_password_verify_sync(j->pw, j->encoded);
        j->result = r < 0 ? r : 0;
        break;
    }
    }
    /* The password is not needed any more: do not keep it around until the loop gets to us. */
    explicit_bzero(j->pw, j->pwlen);
}

static void finish_if_done(struct ldg_password_pool *p)
{
    if (!p->closing || p->dispatching || !ldg_list_empty(&p->running) || !ldg_list_empty(&p->queued))
        return;
    ldg_password_closed_cb cb = p->on_closed;
    void *ud = p->closed_ud;
    free(p);
    if (cb)
        cb(ud);
}

static void deliver(struct ldg_password_pool *p, struct job *j, int result)
{
    const char *hash = j->kind == JOB_HASH && result == 0 ? j->hash : NULL;
    p->dispatching++;
    j->cb(result, hash, j->ud);
    p->dispatching--;
}

static void on_after_work(uv_work_t *w, int status);

static void start_job(struct ldg_password_pool *p, struct job *j)
{
    ldg_list_push_back(&p->running, &j->node);
    int r = uv_queue_work(p->loop, &j->work, on_work, on_after_work);
    LDG_ASSERT(r == 0); /* fails only for a NULL work_cb */
}

static void pump(struct ldg_password_pool *p)
{
    while (!p->closing && p->running.count < p->max_inflight && !ldg_list_empty(&p->queued)) {
        struct job *j = ldg_container_of(ldg_list_pop_front(&p->queued), struct job, node);
        start_job(p, j);
    }
}

static void on_after_work(uv_work_t *w, int status)
{
    struct job *j = ldg_container_of(w, struct job, work);
    struct ldg_password_pool *p = j->pool;
    ldg_list_remove(&p->running, &j->node);
    /* Start the next job before running the callback, so the slot is not idle while it runs. */
    pump(p);
    deliver(p, j, status == UV_ECANCELED ? -ECANCELED : j->result);
    job_free(j);
    finish_if_done(p);
}

static int submit(struct ldg_password_pool *p, enum job_kind kind, const char *pw, const char *encoded,
                  ldg_password_cb cb, void *ud)
{
    LDG_ASSERT(cb);
    if (p->closing)
        return -ECANCELED;
    if (!pw)
        return -EINVAL;
    size_t pwlen = strnlen(pw, LDG_PASSWORD_MAX_BYTES + 1);
    if (pwlen > LDG_PASSWORD_MAX_BYTES)
        return -EINVAL;
    if (kind == JOB_VERIFY && (!encoded || strnlen(encoded, LDG_PASSWORD_HASH_MAX) >= LDG_PASSWORD_HASH_MAX))
        return -EINVAL;
    bool run_now = p->running.count < p->max_inflight;
    if (!run_now && p->queued.count >= p->max_queued) {
        p->rejected++;
        return -EAGAIN;
    }
    struct job *j = ldg_calloc(1, sizeof *j);
    j->pool = p;
    j->kind = kind;
    j->pw = ldg_strndup(pw, pwlen);
    j->pwlen = pwlen;
    if (kind == JOB_VERIFY)
        j->encoded = ldg_strdup(encoded);
    else if (kind == JOB_DUMMY)
        j->encoded = (char *)dummy_hash;
    j->cb = cb;
    j->ud = ud;
    if (run_now)
        start_job(p, j);
    else
        ldg_list_push_back(&p->queued, &j->node);
    return 0;
}

int ldg_password_hash(struct ldg_password_pool *p, const char *pw, ldg_password_cb cb, void *ud)
{
    return submit(p, JOB_HASH, pw, NULL, cb, ud);
}

int ldg_password_verify(struct ldg_password_pool *p, const char *pw, const char *encoded, ldg_password_cb cb,
                        void *ud)
{
    return submit(p, JOB_VERIFY, pw, encoded, cb, ud);
}

int ldg_password_dummy_verify(struct ldg_password_pool *p, const char *pw, ldg_password_cb cb, void *ud)
{
    return submit(p, JOB_DUMMY, pw, NULL, cb, ud);
}

void ldg_password_pool_stats(const struct ldg_password_pool *p, struct ldg_password_pool_stats *out)
{
    out->inflight = (unsigned)p->running.count;
    out->queued = (unsigned)p->queued.count;
    out->rejected = p->rejected;
}

void ldg_password_pool_close(struct ldg_password_pool *p, ldg_password_closed_cb on_closed, void *ud)
{
    LDG_ASSERT(!p->closing);
    p->closing = true;
    p->on_closed = on_closed;
    p->closed_ud = ud;

    struct ldg_list_node *n;
    while ((n = ldg_list_pop_front(&p->queued))) {
        struct job *j = ldg_container_of(n, struct job, node);
        deliver(p, j, -ECANCELED);
        job_free(j);
    }
    /* Only work libuv has not handed to a thread yet can be cancelled; the rest finishes. */
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&p->running, it, tmp)
    {
        struct job *j = ldg_container_of(it, struct job, node);
        (void)uv_cancel((uv_req_t *)&j->work);
    }
    finish_if_done(p);
}
