/*
 * zmq_bench.c — ZeroMQ over ipc://, for bench/compare (built there with
 * -lzmq; not part of the CMake build). Both ends in one process, one
 * thread each, the way ZeroMQ applications are usually written.
 *
 *   zmq_bench reqrep   SIZE COUNT   round trips REQ -> REP: p50/p99 latency
 *   zmq_bench pushpull SIZE COUNT   one-way PUSH -> PULL: messages per second
 *
 * Prints one line of key=value pairs.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *ctx;
static char url[128];
static size_t size;
static long count;
static const int warm = 1000;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void *rep_thread(void *arg)
{
    void *s = arg;
    char *buf = malloc(size + 1);
    for (long i = 0; i < count + warm; i++) {
        int n = zmq_recv(s, buf, size, 0);
        if (n < 0 || zmq_send(s, buf, (size_t)n, 0) < 0)
            break;
    }
    free(buf);
    return NULL;
}

static void *pull_thread(void *arg)
{
    void *s = arg;
    char *buf = malloc(size + 1);
    uint64_t t0 = 0;
    for (long i = 0; i < count; i++) {
        if (zmq_recv(s, buf, size, 0) < 0)
            break;
        if (!t0)
            t0 = now_ns();
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("zmq_bench mode=pushpull size=%zu count=%ld secs=%.3f ops_s=%.0f\n", size, count, secs,
           (double)(count - 1) / secs);
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: zmq_bench reqrep|pushpull SIZE COUNT\n");
        return 2;
    }
    size = strtoul(argv[2], NULL, 0);
    count = atol(argv[3]);
    snprintf(url, sizeof(url), "ipc:///tmp/zmq_bench.%d.sock", (int)getpid());
    ctx = zmq_ctx_new();
    pthread_t th;
    char *buf = calloc(1, size + 1);
    if (!strcmp(argv[1], "reqrep")) {
        void *rep = zmq_socket(ctx, ZMQ_REP), *req = zmq_socket(ctx, ZMQ_REQ);
        if (zmq_bind(rep, url) < 0 || zmq_connect(req, url) < 0)
            return 1;
        pthread_create(&th, NULL, rep_thread, rep);
        uint64_t *lat = malloc((size_t)count * sizeof(uint64_t));
        for (long i = 0; i < count + warm; i++) {
            uint64_t t0 = now_ns();
            if (zmq_send(req, buf, size, 0) < 0 || zmq_recv(req, buf, size, 0) < 0)
                return 1;
            if (i >= warm)
                lat[i - warm] = now_ns() - t0;
        }
        pthread_join(th, NULL);
        qsort(lat, (size_t)count, sizeof(uint64_t), cmp_u64);
        double sum = 0;
        for (long i = 0; i < count; i++)
            sum += (double)lat[i];
        printf("zmq_bench mode=reqrep size=%zu count=%ld ops_s=%.0f p50_us=%.2f p99_us=%.2f\n", size,
               count, 1e9 / (sum / (double)count), (double)lat[count / 2] / 1e3,
               (double)lat[(size_t)((double)count * 0.99)] / 1e3);
        zmq_close(req);
        zmq_close(rep);
    } else if (!strcmp(argv[1], "pushpull")) {
        void *pull = zmq_socket(ctx, ZMQ_PULL), *push = zmq_socket(ctx, ZMQ_PUSH);
        if (zmq_bind(pull, url) < 0 || zmq_connect(push, url) < 0)
            return 1;
        pthread_create(&th, NULL, pull_thread, pull);
        for (long i = 0; i < count; i++)
            if (zmq_send(push, buf, size, 0) < 0)
                return 1;
        pthread_join(th, NULL);
        zmq_close(push);
        zmq_close(pull);
    } else {
        return 2;
    }
    zmq_ctx_term(ctx);
    unlink(url + 6);
    free(buf);
    return 0;
}
