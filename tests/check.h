/* A tiny test harness: CHECK(cond), CHECK_NEAR(a, b, tol), and a summary
   line that ctest's output and CI read: "N passed, N failed". */
#ifndef NABLA_TEST_CHECK_H
#define NABLA_TEST_CHECK_H
#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed_, check_failed_;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) check_passed_++;                                               \
        else {                                                                   \
            check_failed_++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                    \
    do {                                                                         \
        double a_ = (a), b_ = (b);                                               \
        if (fabs(a_ - b_) <= (tol) || (a_ == b_)) check_passed_++;               \
        else {                                                                   \
            check_failed_++;                                                     \
            fprintf(stderr, "%s:%d: %s = %.12g, expected %s = %.12g (tol %g)\n",  \
                    __FILE__, __LINE__, #a, a_, #b, b_, (double)(tol));          \
        }                                                                        \
    } while (0)

#define CHECK_STR(a, b)                                                          \
    do {                                                                         \
        const char *a_ = (a), *b_ = (b);                                         \
        if (a_ && b_ && strcmp(a_, b_) == 0) check_passed_++;                    \
        else {                                                                   \
            check_failed_++;                                                     \
            fprintf(stderr, "%s:%d: got\n%s\nexpected\n%s\n", __FILE__, __LINE__, \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
        }                                                                        \
    } while (0)

/* A watchdog for tests that must not hang: after `seconds`, prints what the
   test was guarding against and exits with status 3.  (POSIX alarm.) */
#include <signal.h>
#include <unistd.h>
static const char *check_alarm_msg_;
static void check_on_alarm_(int sig) {
    (void)sig;
    const char *m = check_alarm_msg_ ? check_alarm_msg_ : "timed out\n";
    ssize_t r = write(2, m, strlen(m));
    (void)r;
    _exit(3);
}
static inline void check_alarm(unsigned seconds, const char *msg) {
    check_alarm_msg_ = msg;
    signal(SIGALRM, check_on_alarm_);
    alarm(seconds);
}

/* Prints the summary and returns the process's exit code. */
static inline int check_report(const char *suite) {
    printf("%s: %d passed, %d failed\n", suite, check_passed_, check_failed_);
    return check_failed_ ? 1 : 0;
}
#endif
