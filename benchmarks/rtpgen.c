/*
 * rtpgen: the RTP load generator of benchmarks/bench_relay.py (built by `make bench-relay`
 * with Debian's gcc into benchmarks/build/rtpgen).
 *
 * For N relayed calls it sends G.711-sized RTP (12-byte header + 160-byte payload = 172
 * bytes) at RATE packets/s in each direction of each call, and receives what the relay
 * forwards, to count loss and one-way latency.
 *
 * Two UDP sockets on 127.0.0.1 play every caller (socket A) and every callee (socket B):
 * call i's caller stream goes from A to the relay's side-A port of call i, its callee
 * stream from B to the relay's side-B port. A relay that latches (symmetric RTP) sends
 * side A's media to A and side B's to B, whatever the call; the payload says which stream
 * and packet it is. One socket per side lets sendmmsg/recvmmsg batch across calls: the
 * generator costs little next to the relay it measures (PEERS.md: a Python generator
 * saturates first).
 *
 * Pacing: the 2N streams are spread evenly over the 20 ms period: packet k (stream
 * k mod 2N, sequence k / 2N) is due at t0 + k * period / 2N. The loop wakes every TICK
 * (250 us), sends everything due with sendmmsg, and receives with recvmmsg in between.
 *
 * Timestamps: each payload carries its send time (CLOCK_REALTIME, ns); the receive time
 * is the kernel's (SO_TIMESTAMPNS, when the datagram reached socket A or B), so the
 * generator's own scheduling does not count as relay latency.
 *
 * Window: packets due in [warmup, warmup + duration) are counted: sent, received (by the
 * end of the drain time), latency histogram (1 us buckets to 200 ms). Packets due during
 * warm-up let the relay latch both sides and are not counted.
 *
 * Usage: rtpgen PAIRS_FILE DURATION_S [WARMUP_S] [DRAIN_S] [RATE] [SIZE]
 *   PAIRS_FILE: one line per call, "PORT_A PORT_B" (the relay's ports on 127.0.0.1).
 * Prints one JSON object on stdout. Exit 0 on a completed run, 2 on a usage or socket error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x424e4348u /* "BNCH" */
#define BATCH 1024
#define HIST_US 200000 /* latency histogram: 1 us buckets up to 200 ms */
#define TICK_NS 250000L
#define MAX_SIZE 1500
#define MIN_SIZE 40

static int64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static uint32_t get32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static void put64(uint8_t *p, uint64_t v) { put32(p, v >> 32); put32(p + 4, (uint32_t)v); }
static uint64_t get64(const uint8_t *p) { return ((uint64_t)get32(p) << 32) | get32(p + 4); }

struct histogram {
    uint32_t *bucket; /* HIST_US + 1 (the last: overflow) */
    uint64_t count;
    int64_t max_ns;
    double sum_us;
};

static void hist_add(struct histogram *h, int64_t ns) {
    int64_t us = ns / 1000;
    if (us < 0) us = 0;
    h->bucket[us < HIST_US ? us : HIST_US]++;
    h->count++;
    h->sum_us += (double)ns / 1000.0;
    if (ns > h->max_ns) h->max_ns = ns;
}

static double hist_quantile(const struct histogram *h, double q) {
    if (h->count == 0) return -1;
    uint64_t rank = (uint64_t)(q * (double)(h->count - 1)) + 1, seen = 0;
    for (int i = 0; i <= HIST_US; i++) {
        seen += h->bucket[i];
        if (seen >= rank) return i == HIST_US ? (double)h->max_ns / 1000.0 : i + 0.5;
    }
    return (double)h->max_ns / 1000.0;
}

static int open_socket(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) { perror("socket"); exit(2); }
    int size = 16 * 1024 * 1024, on = 1;
    /* Root may exceed rmem_max/wmem_max; otherwise the plain option caps at the maximum. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0) {
        perror("SO_TIMESTAMPNS"); exit(2);
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); exit(2); }
    return fd;
}

/* Everything the receive side needs. */
struct state {
    int nstreams;
    int64_t t0;          /* CLOCK_REALTIME of packet 0's due time */
    int64_t spacing_ns;  /* between consecutive packets (all streams) */
    uint64_t first_k, end_k; /* the window: packets first_k .. end_k - 1 */
    uint8_t *seen;       /* one byte per packet of the window: received already */
    uint64_t received[2], duplicates, foreign, outside;
    uint64_t total_received;
    struct histogram hist[2];
};

static void on_packet(struct state *s, const uint8_t *p, ssize_t len, int64_t rx_ns) {
    s->total_received++;
    if (len < 12 + 20 || get32(p + 12) != MAGIC) { s->foreign++; return; }
    uint32_t stream = get32(p + 16), seq = get32(p + 20);
    int64_t sent = (int64_t)get64(p + 24);
    if ((int)stream >= s->nstreams) { s->foreign++; return; }
    uint64_t k = (uint64_t)seq * (uint64_t)s->nstreams + stream;
    if (k < s->first_k || k >= s->end_k) { s->outside++; return; }
    uint8_t *mark = &s->seen[k - s->first_k];
    if (*mark) { s->duplicates++; return; }
    *mark = 1;
    int dir = stream & 1;
    s->received[dir]++;
    hist_add(&s->hist[dir], rx_ns - sent);
}

struct rx_batch {
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    uint8_t data[BATCH][MAX_SIZE];
    char control[BATCH][CMSG_SPACE(sizeof(struct timespec))];
};

static void receive_all(int fd, struct state *s, struct rx_batch *b) {
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            b->iov[i].iov_base = b->data[i];
            b->iov[i].iov_len = MAX_SIZE;
            memset(&b->msgs[i].msg_hdr, 0, sizeof b->msgs[i].msg_hdr);
            b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
            b->msgs[i].msg_hdr.msg_iovlen = 1;
            b->msgs[i].msg_hdr.msg_control = b->control[i];
            b->msgs[i].msg_hdr.msg_controllen = sizeof b->control[i];
        }
        int n = recvmmsg(fd, b->msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) return;
        int64_t fallback = now_ns(CLOCK_REALTIME);
        for (int i = 0; i < n; i++) {
            int64_t rx = fallback;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&b->msgs[i].msg_hdr); c;
                 c = CMSG_NXTHDR(&b->msgs[i].msg_hdr, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    rx = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
                }
            }
            on_packet(s, b->data[i], b->msgs[i].msg_len, rx);
        }
        if (n < BATCH) return;
    }
}

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s PAIRS_FILE DURATION_S [WARMUP_S] [DRAIN_S] [RATE] [SIZE]\n",
                argv[0]);
        return 2;
    }
    double duration = atof(argv[2]);
    double warmup = argc > 3 ? atof(argv[3]) : 2.0;
    double drain = argc > 4 ? atof(argv[4]) : 0.5;
    int rate = argc > 5 ? atoi(argv[5]) : 50;
    int size = argc > 6 ? atoi(argv[6]) : 172;
    if (duration <= 0 || duration > 600 || warmup < 0 || warmup > 60 || drain < 0 || drain > 10
        || rate < 1 || rate > 1000 || size < MIN_SIZE || size > MAX_SIZE) {
        fprintf(stderr, "rtpgen: argument out of range\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 2; }
    int cap = 1024, ncalls = 0;
    int *ports = malloc(sizeof(int) * 2 * cap);
    int pa, pb;
    while (fscanf(f, "%d %d", &pa, &pb) == 2) {
        if (ncalls == cap) { cap *= 2; ports = realloc(ports, sizeof(int) * 2 * cap); }
        ports[2 * ncalls] = pa;
        ports[2 * ncalls + 1] = pb;
        ncalls++;
    }
    fclose(f);
    if (ncalls == 0) { fprintf(stderr, "rtpgen: no calls in %s\n", argv[1]); return 2; }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    int nstreams = 2 * ncalls;
    int fds[2] = {open_socket(), open_socket()}; /* [0]: callers (A), [1]: callees (B) */
    struct sockaddr_in *dest = calloc(nstreams, sizeof *dest);
    for (int st = 0; st < nstreams; st++) {
        dest[st].sin_family = AF_INET;
        dest[st].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        dest[st].sin_port = htons((uint16_t)ports[st]); /* stream 2i: A -> port A; 2i+1: B -> port B */
    }

    struct state s = {0};
    s.nstreams = nstreams;
    s.spacing_ns = 1000000000LL / rate / nstreams;
    if (s.spacing_ns < 1) s.spacing_ns = 1;
    uint64_t per_stream_total = (uint64_t)((warmup + duration) * rate);
    uint64_t total = per_stream_total * (uint64_t)nstreams;
    s.first_k = (uint64_t)(warmup * rate) * (uint64_t)nstreams;
    s.end_k = total;
    s.seen = calloc(s.end_k - s.first_k + 1, 1);
    for (int d = 0; d < 2; d++) s.hist[d].bucket = calloc(HIST_US + 1, sizeof(uint32_t));
    if (!s.seen || !s.hist[0].bucket || !s.hist[1].bucket) { perror("calloc"); return 2; }

    static struct rx_batch rx;
    static struct mmsghdr tx_msgs[2][BATCH];
    static struct iovec tx_iov[2][BATCH];
    static uint8_t tx_data[2][BATCH][MAX_SIZE];
    int tx_n[2] = {0, 0};

    uint64_t sent_window[2] = {0, 0}, send_errors = 0, total_sent = 0;
    struct histogram late = {.bucket = calloc(HIST_US + 1, sizeof(uint32_t))};
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);

    int64_t mono0 = now_ns(CLOCK_MONOTONIC) + 20000000LL; /* start in 20 ms */
    s.t0 = now_ns(CLOCK_REALTIME) + (mono0 - now_ns(CLOCK_MONOTONIC));
    int64_t offset = s.t0 - mono0; /* realtime = monotonic + offset (for the send stamps) */
    uint64_t k = 0;
    int64_t end_mono = mono0 + (int64_t)(total * (uint64_t)s.spacing_ns)
                     + (int64_t)(drain * 1e9);
    struct pollfd pfd[2] = {{.fd = fds[0], .events = POLLIN}, {.fd = fds[1], .events = POLLIN}};

    while (!stop_requested) {
        int64_t now = now_ns(CLOCK_MONOTONIC);
        if (now >= end_mono) break;
        /* Send every packet due by now, batched per socket. */
        while (k < total && mono0 + (int64_t)(k * (uint64_t)s.spacing_ns) <= now) {
            int stream = (int)(k % (uint64_t)nstreams);
            uint32_t seq = (uint32_t)(k / (uint64_t)nstreams);
            int side = stream & 1;
            int i = tx_n[side];
            uint8_t *p = tx_data[side][i];
            int64_t due = mono0 + (int64_t)(k * (uint64_t)s.spacing_ns);
            int64_t stamp = now_ns(CLOCK_REALTIME);
            p[0] = 0x80; p[1] = 0; /* V=2, PT=0 (PCMU) */
            p[2] = (uint8_t)(seq >> 8); p[3] = (uint8_t)seq;
            put32(p + 4, seq * 160u);
            put32(p + 8, 0x10000u + (uint32_t)stream);
            put32(p + 12, MAGIC);
            put32(p + 16, (uint32_t)stream);
            put32(p + 20, seq);
            put64(p + 24, (uint64_t)stamp);
            memset(p + 32, 0xff, (size_t)size - 32);
            tx_iov[side][i].iov_base = p;
            tx_iov[side][i].iov_len = (size_t)size;
            memset(&tx_msgs[side][i].msg_hdr, 0, sizeof tx_msgs[side][i].msg_hdr);
            tx_msgs[side][i].msg_hdr.msg_iov = &tx_iov[side][i];
            tx_msgs[side][i].msg_hdr.msg_iovlen = 1;
            tx_msgs[side][i].msg_hdr.msg_name = &dest[stream];
            tx_msgs[side][i].msg_hdr.msg_namelen = sizeof dest[stream];
            if (k >= s.first_k) {
                sent_window[side]++;
                hist_add(&late, stamp - offset - due);
            }
            tx_n[side]++;
            k++;
            if (tx_n[side] == BATCH) {
                int done = 0;
                while (done < BATCH) {
                    int r = sendmmsg(fds[side], tx_msgs[side] + done, BATCH - done, 0);
                    if (r <= 0) { send_errors += BATCH - done; break; }
                    done += r;
                }
                total_sent += done;
                tx_n[side] = 0;
            }
        }
        for (int side = 0; side < 2; side++) {
            int done = 0;
            while (done < tx_n[side]) {
                int r = sendmmsg(fds[side], tx_msgs[side] + done, tx_n[side] - done, 0);
                if (r <= 0) { send_errors += tx_n[side] - done; break; }
                done += r;
            }
            total_sent += done;
            tx_n[side] = 0;
        }
        receive_all(fds[0], &s, &rx);
        receive_all(fds[1], &s, &rx);
        /* Sleep until the next tick (or a datagram). */
        now = now_ns(CLOCK_MONOTONIC);
        int64_t next = now + TICK_NS;
        if (next > end_mono) next = end_mono;
        struct timespec timeout = {.tv_sec = 0, .tv_nsec = next > now ? next - now : 0};
        /* A datagram wakes the loop early; sends stay on the tick grid. */
        ppoll(pfd, 2, &timeout, NULL);
    }
    receive_all(fds[0], &s, &rx);
    receive_all(fds[1], &s, &rx);
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec)
               + ((ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec)) / 1e6;

    /* A packet counted as sent may have failed in sendmmsg: those are send_errors. */
    uint64_t sent_all = sent_window[0] + sent_window[1];
    uint64_t recv_all = s.received[0] + s.received[1];
    struct histogram both = {.bucket = calloc(HIST_US + 1, sizeof(uint32_t))};
    for (int d = 0; d < 2; d++) {
        for (int i = 0; i <= HIST_US; i++) both.bucket[i] += s.hist[d].bucket[i];
        both.count += s.hist[d].count;
        both.sum_us += s.hist[d].sum_us;
        if (s.hist[d].max_ns > both.max_ns) both.max_ns = s.hist[d].max_ns;
    }
    printf("{\"calls\": %d, \"rate\": %d, \"size\": %d, \"duration_s\": %.3f, \"warmup_s\": %.3f, "
           "\"interrupted\": %s, ",
           ncalls, rate, size, duration, warmup, stop_requested ? "true" : "false");
    printf("\"sent\": %llu, \"received\": %llu, \"loss\": %.6f, ",
           (unsigned long long)sent_all, (unsigned long long)recv_all,
           sent_all ? 1.0 - (double)recv_all / (double)sent_all : 1.0);
    printf("\"sent_a_to_b\": %llu, \"received_a_to_b\": %llu, \"sent_b_to_a\": %llu, "
           "\"received_b_to_a\": %llu, ",
           (unsigned long long)sent_window[0], (unsigned long long)s.received[0],
           (unsigned long long)sent_window[1], (unsigned long long)s.received[1]);
    printf("\"latency_us\": {\"mean\": %.1f, \"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, "
           "\"p999\": %.1f, \"max\": %.1f}, ",
           both.count ? both.sum_us / (double)both.count : -1.0, hist_quantile(&both, 0.5),
           hist_quantile(&both, 0.9), hist_quantile(&both, 0.99), hist_quantile(&both, 0.999),
           (double)both.max_ns / 1000.0);
    printf("\"send_lateness_us\": {\"p50\": %.1f, \"p99\": %.1f, \"max\": %.1f}, ",
           hist_quantile(&late, 0.5), hist_quantile(&late, 0.99), (double)late.max_ns / 1000.0);
    printf("\"total_sent\": %llu, \"total_received\": %llu, \"send_errors\": %llu, "
           "\"duplicates\": %llu, \"foreign\": %llu, \"outside_window\": %llu, "
           "\"generator_cpu_s\": %.3f}\n",
           (unsigned long long)total_sent, (unsigned long long)s.total_received,
           (unsigned long long)send_errors, (unsigned long long)s.duplicates,
           (unsigned long long)s.foreign, (unsigned long long)s.outside, cpu);
    return 0;
}
