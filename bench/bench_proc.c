/*
 * bench_proc — what the bench reads about processes from /proc and the kernel: CPU time and
 * RSS of the servers under test (--server-pid), the generator's own CPU time per worker
 * thread, the whole machine's busy time, and the open-files limit.
 *
 * A sample is a snapshot; rates are differences of two samples taken by the main thread.
 * Figures that cannot be read (a pid that exited, no /proc) are negative, and the report
 * leaves them out rather than printing zeros.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* utime + stime of pid in seconds, or -1. */
static double bench_proc_cpu(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name may contain spaces and parentheses: fields restart after the last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long utime = 0, stime = 0;
    /* after ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15) */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of pid in KiB, or -1. */
static long bench_proc_rss(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static void bench_machine_cpu(uint64_t *busy, uint64_t *total, uint64_t *irq)
{
    *busy = *total = *irq = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    unsigned long long v[8] = {0};
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) >= 4) {
        for (int i = 0; i < 8; i++)
            *total += v[i];
        *busy = *total - v[3] - v[4]; /* minus idle and iowait */
        *irq = v[5] + v[6];
    }
    fclose(f);
}

static double bench_timespec_s(const struct timespec *ts)
{
    return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

void bench_proc_sample(struct bench_proc_sample *s, const int *pids, int pid_count,
                       const struct bench_worker *workers, int threads)
{
    memset(s, 0, sizeof(*s));
    s->at_ns = bench_now_ns();
    for (int i = 0; i < 2 * BENCH_MAX_PIDS; i++) {
        s->cpu_s[i] = i < pid_count ? bench_proc_cpu(pids[i]) : -1;
        s->rss_kib[i] = i < pid_count ? bench_proc_rss(pids[i]) : -1;
    }
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0)
        s->self_cpu_s = bench_timespec_s(&ts);
    for (int t = 0; t < threads && t < BENCH_MAX_THREADS; t++) {
        clockid_t cid;
        s->thread_cpu_s[t] = -1;
        if (workers[t].started && pthread_getcpuclockid(workers[t].thread, &cid) == 0 &&
            clock_gettime(cid, &ts) == 0)
            s->thread_cpu_s[t] = bench_timespec_s(&ts);
    }
    bench_machine_cpu(&s->machine_busy, &s->machine_total, &s->machine_irq);
}

long bench_raise_nofile(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if ((long)rl.rlim_cur >= want)
        return (long)rl.rlim_cur;
    struct rlimit up = rl;
    up.rlim_cur = (rlim_t)want;
    if (up.rlim_max < up.rlim_cur)
        up.rlim_max = up.rlim_cur; /* needs CAP_SYS_RESOURCE; fall back below */
    if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
        up.rlim_cur = rl.rlim_max;
        up.rlim_max = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) != 0)
            return (long)rl.rlim_cur;
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}
