/*
 * bench_out.c — how `udsock bench` prints its results: a table for people,
 * JSON for bench/report and scripts, CSV for spreadsheets. Rows are
 * printed as soon as they are measured so a long sweep shows progress.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static int rows_out;

const char *bench_placement(const bench_row *r, char *buf, size_t size)
{
    if (r->cpu_server < 0 && r->cpu_client < 0)
        snprintf(buf, size, "unpinned");
    else if (r->cpu_server == r->cpu_client)
        snprintf(buf, size, "same:%d", r->cpu_server);
    else if (r->cpu_server < 0)
        snprintf(buf, size, "c%d", r->cpu_client);
    else if (r->cpu_client < 0)
        snprintf(buf, size, "s%d", r->cpu_server);
    else
        snprintf(buf, size, "s%d/c%d", r->cpu_server, r->cpu_client);
    return buf;
}

/* "64", "4K", "1M": sizes the way people write them. */
static const char *fmt_size(size_t v, char *buf, size_t size)
{
    if (v >= 1048576 && v % 1048576 == 0)
        snprintf(buf, size, "%zuM", v / 1048576);
    else if (v >= 1024 && v % 1024 == 0)
        snprintf(buf, size, "%zuK", v / 1024);
    else
        snprintf(buf, size, "%zu", v);
    return buf;
}

/* JSON string body with the few escapes our texts can need. */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

void bench_out_begin(int fmt, const char *argv_line)
{
    rows_out = 0;
    struct utsname u;
    if (uname(&u) < 0)
        memset(&u, 0, sizeof(u));
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (fmt == BF_JSON) {
        printf("{\"tool\": \"udsock bench\", \"version\": \"%s\", \"kernel\": ", uds_version());
        json_str(u.release);
        printf(", \"cpus\": %ld, \"command\": ", ncpu);
        json_str(argv_line);
        printf(",\n \"results\": [\n");
    } else if (fmt == BF_CSV) {
        printf("mode,transport,impl,size,clients,pipeline,batch,spin_us,cpu_server,cpu_client,"
               "sndbuf,rcvbuf,ops,bytes,secs,ops_per_s,mb_per_s,p50_us,p90_us,p99_us,"
               "p999_us,max_us,min_us,mean_us,extra,note\n");
    } else {
        printf("# udsock bench %s, kernel %s, %ld CPUs\n", uds_version(), u.release, ncpu);
        printf("%-8s %-9s %5s %-7s %-9s %4s %11s %9s %8s %8s %8s %8s %9s %s\n", "mode",
               "transport", "size", "conc", "cpus", "spin", "ops/s", "MB/s", "p50us",
               "p90us", "p99us", "p99.9us", "max_us", "note");
    }
    fflush(stdout);
}

void bench_out_row(int fmt, const bench_row *r)
{
    char place[48], sz[32], conc[32];
    double ops_s = r->secs > 0 ? (double)r->ops / r->secs : 0;
    double mb_s = r->secs > 0 ? (double)r->bytes / r->secs / 1e6 : 0;
    bench_placement(r, place, sizeof(place));
    if (fmt == BF_JSON) {
        printf("%s  {\"mode\": \"%s\", \"transport\": \"%s\", \"impl\": \"%s\", \"size\": %zu, "
               "\"clients\": %d, \"pipeline\": %d, \"batch\": %d, \"spin_us\": %d, "
               "\"cpu_server\": %d, \"cpu_client\": %d, \"placement\": \"%s\", "
               "\"sndbuf\": %d, \"rcvbuf\": %d, \"ops\": %llu, \"bytes\": %llu, "
               "\"secs\": %.6f, \"ops_per_s\": %.1f, \"mb_per_s\": %.2f",
               rows_out ? ",\n" : "", r->mode, r->transport, r->impl ? r->impl : "core",
               r->size, r->clients, r->pipeline, r->batch, r->spin_us, r->cpu_server,
               r->cpu_client, place, r->sndbuf, r->rcvbuf, (unsigned long long)r->ops,
               (unsigned long long)r->bytes, r->secs, ops_s, mb_s);
        if (r->has_lat)
            printf(", \"lat_us\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
                   "\"p999\": %.3f, \"max\": %.3f, \"min\": %.3f, \"mean\": %.3f}",
                   r->p50, r->p90, r->p99, r->p999, r->max, r->min, r->mean);
        if (r->extra > 0)
            printf(", \"bytes_per_conn\": %.1f", r->extra);
        printf(", \"note\": ");
        json_str(r->note);
        printf("}");
    } else if (fmt == BF_CSV) {
        printf("%s,%s,%s,%zu,%d,%d,%d,%d,%d,%d,%d,%d,%llu,%llu,%.6f,%.1f,%.2f,", r->mode,
               r->transport, r->impl ? r->impl : "core", r->size, r->clients, r->pipeline,
               r->batch, r->spin_us, r->cpu_server, r->cpu_client, r->sndbuf, r->rcvbuf,
               (unsigned long long)r->ops, (unsigned long long)r->bytes, r->secs, ops_s, mb_s);
        if (r->has_lat)
            printf("%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,", r->p50, r->p90, r->p99, r->p999,
                   r->max, r->min, r->mean);
        else
            printf(",,,,,,,");
        printf("%.1f,\"", r->extra);
        for (const char *s = r->note; *s; s++)
            putchar(*s == '"' ? '\'' : *s);
        printf("\"\n");
    } else {
        if (!strcmp(r->mode, "rr"))
            snprintf(conc, sizeof(conc), "%dx%d", r->clients, r->pipeline);
        else if (!strcmp(r->mode, "dgram"))
            snprintf(conc, sizeof(conc), "b%d", r->batch);
        else if (!strcmp(r->mode, "hold"))
            snprintf(conc, sizeof(conc), "%d", r->clients);
        else
            snprintf(conc, sizeof(conc), "1");
        printf("%-8s %-9s %5s %-7s %-9s %4d %11.0f %9.1f", r->mode, r->transport,
               fmt_size(r->size, sz, sizeof(sz)), conc, place, r->spin_us, ops_s, mb_s);
        if (r->has_lat)
            printf(" %8.2f %8.2f %8.2f %8.2f %9.1f", r->p50, r->p90, r->p99, r->p999, r->max);
        else
            printf(" %8s %8s %8s %8s %9s", "-", "-", "-", "-", "-");
        if (r->extra > 0)
            printf(" %.0f B/conn user-space", r->extra);
        printf("%s%s\n", r->note[0] ? " " : "", r->note);
    }
    rows_out++;
    fflush(stdout);
}

void bench_out_end(int fmt)
{
    if (fmt == BF_JSON)
        printf("\n ]\n}\n");
    fflush(stdout);
}
