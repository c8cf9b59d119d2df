/*
 * sse_client.c: load generator of bench/sse.sh (one libuv loop, one thread).
 *
 *   sse_client -p PORT -k KEYS_FILE [-n STREAMS] [-r RATE] [-d SECONDS] [-a ADDRS] [-c INGEST_CONNS]
 *
 * KEYS_FILE holds one "<api key> <project id>" per line; stream i uses key i % nkeys, so with
 * STREAMS = 5 x nkeys every project has 5 streams (the per-account cap of the default config).
 * Phases, each announced on stdout; the driver script sends SIGUSR1 to move on where it measures:
 *   1. warm: one GET /api/v1/queue/depth per key (the gateway's key cache, as in steady state);
 *      prints "warm ..." and waits for SIGUSR1.
 *   2. connect: STREAMS connections opened at once from ADDRS loopback source addresses
 *      (127.0.0.1 .. 127.0.0.ADDRS); prints "connected N/STREAMS in X ms" when every stream got its
 *      `connected` event (or failed) and waits for SIGUSR1.
 *   3. ingest: POST /api/v1/ingest/single (level error, message "bench-<seq>") at RATE per second
 *      for SECONDS over INGEST_CONNS keep-alive connections, project seq % nkeys; every stream
 *      notes when each notification arrives. Latency = arrival - the moment the ingest request
 *      was written. Prints the histogram's p50/p99/max and the delivery count, then exits.
 * Every phase is bounded in time; exit status 0 only if every step completed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define HIST_US 10    /* histogram resolution */
#define HIST_N 200000 /* up to 2 s */
#define TAG "bench-"
#define TAG_LEN 6
#define PHASE_TIMEOUT_MS 60000

struct key {
    char key[64];
    long pid;
};

struct stream {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    char req[256];
    bool connected, failed, closed;
    uint32_t connect_us; /* phase start -> `connected` */
    char tail[32];
    size_t taillen;
};

struct ing {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    char wbuf[512];
    char rbuf[4096];
    size_t rlen;
    bool ready, busy;
};

static uv_loop_t *loop;
static int port, nstreams = 10000, rate = 1000, seconds = 5, naddrs = 4, ningest = 16;
static struct key *keys;
static size_t nkeys;
static struct stream *streams;
static struct ing *ings;
static char readbuf[65536];
static uv_signal_t sigusr;
static uv_timer_t ticker, deadline, stopper;
static int phase; /* 1 warm, 2 connect, 3 ingest, 4 drain */
static uint64_t t_phase;
static size_t warm_sent, warm_done, n_connected, n_failed, n_closed_early;
static uint64_t *t_sent; /* hrtime ns per seq */
static size_t max_seq, seq_sent, ing_done, ing_bad;
static uint64_t delivered, hist[HIST_N + 1], lat_max_us;
static double ingest_secs;
static int exit_code = 1;

static void die(const char *what, int rc)
{
    fprintf(stderr, "sse_client: %s: %s\n", what, rc ? uv_strerror(rc) : "failed");
    exit(2);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    b->base = readbuf;
    b->len = sizeof readbuf;
}

static void start_phase(int p);

/* ---- latency accounting -------------------------------------------------------------------- */

static void record(size_t seq, uint64_t now)
{
    if (seq >= max_seq || !t_sent[seq])
        return;
    uint64_t us = (now - t_sent[seq]) / 1000;
    if (us > lat_max_us)
        lat_max_us = us;
    size_t b = us / HIST_US;
    hist[b > HIST_N ? HIST_N : b]++;
    delivered++;
}

static double pct(double p)
{
    uint64_t want = (uint64_t)(p * (double)delivered + 0.5), acc = 0;
    if (want == 0)
        want = 1;
    for (size_t i = 0; i <= HIST_N; i++) {
        acc += hist[i];
        if (acc >= want)
            return (double)(i * HIST_US + HIST_US / 2) / 1000.0;
    }
    return 0;
}

/* Find "bench-<digits>" tags in tail + data; keep an unfinished tag (or the last TAG_LEN-1
 * bytes) as the next tail. */
static void scan(struct stream *s, const char *data, size_t n, uint64_t now)
{
    static char buf[sizeof readbuf + 64];
    memcpy(buf, s->tail, s->taillen);
    memcpy(buf + s->taillen, data, n);
    size_t len = s->taillen + n, i = 0, keep_from = len > TAG_LEN - 1 ? len - (TAG_LEN - 1) : 0;
    while (i + TAG_LEN <= len) {
        char *p = memmem(buf + i, len - i, TAG, TAG_LEN);
        if (!p)
            break;
        size_t at = (size_t)(p - buf), j = at + TAG_LEN, seq = 0;
        while (j < len && buf[j] >= '0' && buf[j] <= '9')
            seq = seq * 10 + (size_t)(buf[j++] - '0');
        if (j == len) { /* the number may go on in the next read */
            keep_from = at;
            break;
        }
        record(seq, now);
        i = j;
        if (keep_from < i)
            keep_from = i;
    }
    s->taillen = len - keep_from;
    if (s->taillen > sizeof s->tail) {
        keep_from = len - sizeof s->tail;
        s->taillen = sizeof s->tail;
    }
    memcpy(s->tail, buf + keep_from, s->taillen);
}

/* ---- streams ------------------------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void check_connected(void)
{
    if (phase != 2 || n_connected + n_failed < (size_t)nstreams)
        return;
    uint32_t *t = calloc(n_connected + 1, sizeof *t);
    size_t k = 0;
    for (int i = 0; i < nstreams; i++)
        if (streams[i].connected)
            t[k++] = streams[i].connect_us;
    qsort(t, k, sizeof *t, cmp_u32);
    printf("connected %zu/%d in %.1f ms (%zu failed; per stream p50 %.1f ms p99 %.1f ms)\n", n_connected,
           nstreams, (double)(uv_hrtime() - t_phase) / 1e6, n_failed, k ? t[k / 2] / 1000.0 : 0.0,
           k ? t[k * 99 / 100] / 1000.0 : 0.0);
    free(t);
    fflush(stdout);
    phase = 25; /* waiting for SIGUSR1 */
}

static void on_stream_closed(uv_handle_t *h)
{
}

static void stream_fail(struct stream *s, const char *why)
{
    if (!s->connected && !s->failed) {
        s->failed = true;
        n_failed++;
        if (n_failed <= 3)
            fprintf(stderr, "sse_client: stream failed: %s\n", why);
        check_connected();
    } else if (s->connected && !s->closed) {
        n_closed_early++;
    }
    if (!s->closed) {
        s->closed = true;
        uv_close((uv_handle_t *)&s->tcp, on_stream_closed);
    }
}

static void on_stream_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct stream *s = (struct stream *)st;
    if (n < 0) {
        stream_fail(s, n == UV_EOF ? "closed by the server" : uv_strerror((int)n));
        return;
    }
    if (n == 0)
        return;
    uint64_t now = uv_hrtime();
    if (!s->connected) {
        if (strncmp(b->base, "HTTP/1.1 200", 12) != 0 && s->taillen == 0) {
            char line[64];
            snprintf(line, sizeof line, "%.*s",
                     (int)(strcspn(b->base, "\r") < 60 ? strcspn(b->base, "\r") : 60), b->base);
            stream_fail(s, line);
            return;
        }
        s->taillen = 1; /* head seen */
        if (memmem(b->base, (size_t)n, "event: connected", 16)) {
            s->connected = true;
            s->connect_us = (uint32_t)((now - t_phase) / 1000);
            s->taillen = 0;
            n_connected++;
            check_connected();
        }
        return;
    }
    scan(s, b->base, (size_t)n, now);
}

static void on_stream_written(uv_write_t *w, int status)
{
    struct stream *s = w->data;
    if (status < 0)
        stream_fail(s, uv_strerror(status));
}

static void on_stream_connect(uv_connect_t *c, int status)
{
    struct stream *s = c->data;
    if (status < 0) {
        stream_fail(s, uv_strerror(status));
        return;
    }
    uv_buf_t b = uv_buf_init(s->req, (unsigned)strlen(s->req));
    s->wreq.data = s;
    int rc = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, on_stream_written);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_stream_read);
    if (rc < 0)
        stream_fail(s, uv_strerror(rc));
}

/* Connects are issued CONNECT_BATCH per loop iteration (an idle handle), so the first streams'
 * requests and answers flow while the rest are still being opened, all within a fraction of a
 * second. */
#define CONNECT_BATCH 250
static uv_idle_t opener;
static int next_stream;

static void on_open_batch(uv_idle_t *h)
{
    struct sockaddr_in dst;
    uv_ip4_addr("127.0.0.1", port, &dst);
    int end = next_stream + CONNECT_BATCH < nstreams ? next_stream + CONNECT_BATCH : nstreams;
    for (int i = next_stream; i < end; i++) {
        struct stream *s = &streams[i];
        const struct key *k = &keys[(size_t)i % nkeys];
        snprintf(s->req, sizeof s->req,
                 "GET /api/v1/notifications/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: %s\r\n"
                 "Accept: text/event-stream\r\n\r\n",
                 k->key);
        /* The port is chosen at connect (IP_BIND_ADDRESS_NO_PORT), not by a bind(2) that must
         * search for a port free for any destination. */
        uv_tcp_init_ex(loop, &s->tcp, AF_INET);
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", 1 + i % naddrs);
        struct sockaddr_in sa;
        uv_ip4_addr(src, 0, &sa);
        int rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&sa, 0);
        s->creq.data = s;
        if (rc == 0)
            rc = uv_tcp_connect(&s->creq, &s->tcp, (const struct sockaddr *)&dst, on_stream_connect);
        if (rc < 0)
            stream_fail(s, uv_strerror(rc));
    }
    next_stream = end;
    if (next_stream == nstreams) {
        uv_idle_stop(h);
        fprintf(stderr, "sse_client: %d connects issued in %.1f ms\n", nstreams,
                (double)(uv_hrtime() - t_phase) / 1e6);
    }
}

/* ---- ingest connections --------------------------------------------------------------------- */

static void ing_next(void);

static void on_ing_written(uv_write_t *w, int status)
{
    if (status < 0)
        die("ingest write", status);
}

static void ing_send(struct ing *g, size_t seq, bool warm)
{
    const struct key *k = &keys[seq % nkeys];
    if (warm) {
        snprintf(g->wbuf, sizeof g->wbuf,
                 "GET /api/v1/queue/depth HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: %s\r\n\r\n", k->key);
    } else {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        char ts[40], body[256];
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        int bl = snprintf(body, sizeof body,
                          "{\"timestamp\": \"%s.%06ldZ\", \"level\": \"error\", \"log_type\": \"console\", "
                          "\"message\": \"" TAG "%zu\"}",
                          ts, (long)tv.tv_usec, seq);
        snprintf(g->wbuf, sizeof g->wbuf,
                 "POST /api/v1/ingest/single HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                 k->key, bl, body);
        t_sent[seq] = uv_hrtime();
    }
    g->busy = true;
    g->rlen = 0;
    uv_buf_t b = uv_buf_init(g->wbuf, (unsigned)strlen(g->wbuf));
    int rc = uv_write(&g->wreq, (uv_stream_t *)&g->tcp, &b, 1, on_ing_written);
    if (rc < 0)
        die("ingest write", rc);
}

static void on_ing_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct ing *g = (struct ing *)st;
    if (n < 0)
        die("ingest connection closed", (int)n);
    if (n == 0)
        return;
    if (g->rlen + (size_t)n >= sizeof g->rbuf)
        die("ingest response too large", 0);
    memcpy(g->rbuf + g->rlen, b->base, (size_t)n);
    g->rlen += (size_t)n;
    g->rbuf[g->rlen] = 0;
    char *end = strstr(g->rbuf, "\r\n\r\n");
    if (!end)
        return;
    char *cl = strcasestr(g->rbuf, "\r\nContent-Length: ");
    size_t body = cl ? strtoul(cl + 18, NULL, 10) : 0;
    if ((size_t)(end + 4 - g->rbuf) + body > g->rlen)
        return;
    bool ok =
        phase == 1 ? strncmp(g->rbuf, "HTTP/1.1 200", 12) == 0 : strncmp(g->rbuf, "HTTP/1.1 202", 12) == 0;
    if (!ok && ing_bad++ < 3)
        fprintf(stderr, "sse_client: unexpected answer: %.60s\n", g->rbuf);
    g->busy = false;
    if (phase == 1)
        warm_done++;
    else
        ing_done++;
    ing_next();
}

static void on_ing_connect(uv_connect_t *c, int status)
{
    struct ing *g = c->data;
    if (status < 0)
        die("ingest connect", status);
    g->ready = true;
    int rc = uv_read_start((uv_stream_t *)&g->tcp, on_alloc, on_ing_read);
    if (rc < 0)
        die("ingest read", rc);
    ing_next();
}

static struct ing *free_ing(void)
{
    for (int i = 0; i < ningest; i++)
        if (ings[i].ready && !ings[i].busy)
            return &ings[i];
    return NULL;
}

static void ing_next(void)
{
    struct ing *g;
    if (phase == 1) {
        while (warm_sent < nkeys && (g = free_ing()))
            ing_send(g, warm_sent++, true);
        if (warm_done == nkeys) {
            printf("warm %zu keys in %.1f ms\n", nkeys, (double)(uv_hrtime() - t_phase) / 1e6);
            fflush(stdout);
            phase = 15;
        }
        return;
    }
    if (phase != 3)
        return;
    uint64_t elapsed_ns = uv_hrtime() - t_phase;
    size_t due = (size_t)((double)elapsed_ns * rate / 1e9);
    if (due > max_seq)
        due = max_seq;
    while (seq_sent < due && (g = free_ing()))
        ing_send(g, seq_sent++, false);
}

/* ---- phases ---------------------------------------------------------------------------------- */

static void report(void)
{
    uint64_t expected = (uint64_t)seq_sent * (uint64_t)(nstreams / (int)nkeys);
    double secs = ingest_secs;
    printf("ingest %zu sent (%zu answered, %zu not 202) in %.2f s = %.0f/s\n", seq_sent, ing_done, ing_bad,
           secs, (double)seq_sent / secs);
    printf("delivered %llu of %llu expected; streams closed early %zu\n", (unsigned long long)delivered,
           (unsigned long long)expected, n_closed_early);
    printf("latency p50 %.3f ms p99 %.3f ms max %.3f ms\n", pct(0.50), pct(0.99),
           (double)lat_max_us / 1000.0);
    fflush(stdout);
    exit_code = (delivered == expected && ing_bad == 0 && n_closed_early == 0) ? 0 : 1;
}

static void on_stop(uv_timer_t *t)
{
    uv_stop(loop);
}

static void on_tick(uv_timer_t *t)
{
    if (phase == 3) {
        if (uv_hrtime() - t_phase >= (uint64_t)seconds * 1000000000ull) {
            phase = 4;
            ingest_secs = (double)(uv_hrtime() - t_phase) / 1e9;
            uv_timer_start(&stopper, on_stop, 1500, 0); /* stragglers */
            return;
        }
        ing_next();
    }
}

static void start_phase(int p)
{
    phase = p;
    t_phase = uv_hrtime();
    if (p == 2) {
        uv_idle_start(&opener, on_open_batch);
        check_connected();
    } else if (p == 3) {
        uv_timer_start(&ticker, on_tick, 1, 1);
        ing_next();
    }
}

static void on_sigusr1(uv_signal_t *s, int sig)
{
    if (phase == 15)
        start_phase(2);
    else if (phase == 25)
        start_phase(3);
}

static void on_deadline(uv_timer_t *t)
{
    fprintf(stderr, "sse_client: phase %d did not finish within %d ms\n", phase, PHASE_TIMEOUT_MS);
    exit(3);
}

static void load_keys(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die(path, -errno);
    size_t cap = 1024;
    keys = calloc(cap, sizeof *keys);
    struct key k;
    while (fscanf(f, "%63s %ld", k.key, &k.pid) == 2) {
        if (nkeys == cap)
            keys = realloc(keys, (cap *= 2) * sizeof *keys);
        keys[nkeys++] = k;
    }
    fclose(f);
    if (!nkeys)
        die("no keys", 0);
}

int main(int argc, char **argv)
{
    const char *keyfile = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "p:k:n:r:d:a:c:")) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            break;
        case 'k':
            keyfile = optarg;
            break;
        case 'n':
            nstreams = atoi(optarg);
            break;
        case 'r':
            rate = atoi(optarg);
            break;
        case 'd':
            seconds = atoi(optarg);
            break;
        case 'a':
            naddrs = atoi(optarg);
            break;
        case 'c':
            ningest = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: sse_client -p PORT -k KEYS [-n STREAMS] [-r RATE] [-d SECONDS] [-a "
                            "ADDRS] [-c CONNS]\n");
            return 2;
        }
    }
    if (!port || !keyfile || nstreams <= 0 || rate <= 0 || seconds <= 0 || naddrs <= 0 || naddrs > 250 ||
        ningest <= 0)
        die("bad arguments", 0);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)nstreams + (rlim_t)ningest + 64)
            die("RLIMIT_NOFILE too low for the streams asked", 0);
    }
    load_keys(keyfile);
    loop = uv_default_loop();
    streams = calloc((size_t)nstreams, sizeof *streams);
    ings = calloc((size_t)ningest, sizeof *ings);
    max_seq = (size_t)rate * (size_t)seconds + 1;
    t_sent = calloc(max_seq, sizeof *t_sent);
    uv_signal_init(loop, &sigusr);
    uv_signal_start(&sigusr, on_sigusr1, SIGUSR1);
    uv_timer_init(loop, &ticker);
    uv_timer_init(loop, &deadline);
    uv_timer_init(loop, &stopper);
    uv_idle_init(loop, &opener);
    uv_timer_start(&deadline, on_deadline, PHASE_TIMEOUT_MS * 4, 0);
    struct sockaddr_in dst;
    uv_ip4_addr("127.0.0.1", port, &dst);
    phase = 1;
    t_phase = uv_hrtime();
    for (int i = 0; i < ningest; i++) {
        struct ing *g = &ings[i];
        uv_tcp_init(loop, &g->tcp);
        uv_tcp_nodelay(&g->tcp, 1);
        g->creq.data = g;
        int rc = uv_tcp_connect(&g->creq, &g->tcp, (const struct sockaddr *)&dst, on_ing_connect);
        if (rc < 0)
            die("ingest connect", rc);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    report();
    return exit_code;
}
