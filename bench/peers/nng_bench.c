/*
 * nng_bench.c — NNG over ipc://, for bench/compare (built there with
 * -lnng; not part of the CMake build). Both ends in one process, one
 * thread each, NNG's synchronous API with default options.
 *
 *   nng_bench reqrep   SIZE COUNT   round trips REQ -> REP: p50/p99 latency
 *   nng_bench pushpull SIZE COUNT   one-way PUSH -> PULL: messages per second
 *
 * Prints one line of key=value pairs.
 */
#define _GNU_SOURCE
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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
    nng_socket s = *(nng_socket *)arg;
    char *buf = malloc(size + 1);
    for (long i = 0; i < count + warm; i++) {
        size_t n = size;
        if (nng_recv(s, buf, &n, 0) != 0 || nng_send(s, buf, n, 0) != 0)
            break;
    }
    free(buf);
    return NULL;
}

static void *pull_thread(void *arg)
{
    nng_socket s = *(nng_socket *)arg;
    char *buf = malloc(size + 1);
    uint64_t t0 = 0;
    for (long i = 0; i < count; i++) {
        size_t n = size;
        if (nng_recv(s, buf, &n, 0) != 0)
            break;
        if (!t0)
            t0 = now_ns();
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("nng_bench mode=pushpull size=%zu count=%ld secs=%.3f ops_s=%.0f\n", size, count, secs,
           (double)(count - 1) / secs);
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: nng_bench reqrep|pushpull SIZE COUNT\n");
        return 2;
    }
    size = strtoul(argv[2], NULL, 0);
    count = atol(argv[3]);
    char url[128];
    snprintf(url, sizeof(url), "ipc:///tmp/nng_bench.%d.sock", (int)getpid());
    pthread_t th;
    char *buf = calloc(1, size + 1);
    nng_socket srv, cli;
    if (!strcmp(argv[1], "reqrep")) {
        if (nng_rep0_open(&srv) || nng_req0_open(&cli) || nng_listen(srv, url, NULL, 0) ||
            nng_dial(cli, url, NULL, 0))
            return 1;
        pthread_create(&th, NULL, rep_thread, &srv);
        uint64_t *lat = malloc((size_t)count * sizeof(uint64_t));
        for (long i = 0; i < count + warm; i++) {
            uint64_t t0 = now_ns();
            size_t n = size;
            if (nng_send(cli, buf, size, 0) || nng_recv(cli, buf, &n, 0))
                return 1;
            if (i >= warm)
                lat[i - warm] = now_ns() - t0;
        }
        pthread_join(th, NULL);
        qsort(lat, (size_t)count, sizeof(uint64_t), cmp_u64);
        double sum = 0;
        for (long i = 0; i < count; i++)
            sum += (double)lat[i];
        printf("nng_bench mode=reqrep size=%zu count=%ld ops_s=%.0f p50_us=%.2f p99_us=%.2f\n", size,
               count, 1e9 / (sum / (double)count), (double)lat[count / 2] / 1e3,
               (double)lat[(size_t)((double)count * 0.99)] / 1e3);
    } else if (!strcmp(argv[1], "pushpull")) {
        if (nng_pull0_open(&srv) || nng_push0_open(&cli) || nng_listen(srv, url, NULL, 0) ||
            nng_dial(cli, url, NULL, 0))
            return 1;
        pthread_create(&th, NULL, pull_thread, &srv);
        for (long i = 0; i < count; i++)
            if (nng_send(cli, buf, size, 0))
                return 1;
        pthread_join(th, NULL);
    } else {
        return 2;
    }
    nng_close(cli);
    nng_close(srv);
    unlink(url + 6);
    free(buf);
    return 0;
}
