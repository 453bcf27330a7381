/*
 * vectraguard-entry: the first program of every sandbox, run by the init (tini),
 * or on Docker Engine the init itself (--await SECONDS below).
 *
 * A sandbox's container is created, and may be initialised, before the command
 * it will run is known (a pool of initialised containers: vectraguard/pool/).
 * So the container's own command is this program, bind-mounted read-only from
 * the host; it reads the run's command from a file Vectra Guard writes into a
 * directory bind-mounted read-only at RUN_DIR, applies it and execs it. Cold
 * runs go the same way, so from inside a pooled run and a cold one look the
 * same.
 *
 * The file (RUN_FILE), every field ending in a NUL byte:
 *   "VGE1"  CWD  NENV  NAME=VALUE...  NARGV  ARG...
 * NENV and NARGV in decimal. The environment entries are set over this
 * process's own environment (Podman's defaults and the image's, as Podman
 * would merge the run's own over them); then chdir(CWD) and execvp(ARG[0], ARG)
 * with the PATH just set — what tini does for a command given directly.
 * A command that cannot be found exits 127, one that cannot be executed 126,
 * as tini does; a file that cannot be read or parsed exits 125 and says so.
 *
 * With one argument NAME, the file read is RUN_DIR/NAME instead: `vectraguard
 * exec` gives each exec a file of its own (exec-<random>), so that no exec
 * ever reads another's command, nor the session's (sessions/enter.py). NAME is
 * a plain file name: letters, digits, '-' and '_' (no '/', no dot file).
 * Podman does not always keep an exec session's exit code (4.3 loses it when
 * execs run at once), so for an exec this program stays as the parent: it
 * runs the command as a child in a process group of its own, passes on
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT to that group, and writes "pid PGID\n"
 * at the start and "exit STATUS\n" at the end (128+N for a signal N) to the
 * FIFO RUN_DIR/NAME.status, which Vectra Guard made and reads; it then exits
 * with that status. Any process of the sandbox (the same user) could also
 * write there: Vectra Guard trusts these lines no more than it trusts the
 * sandbox, and prefers Podman's exit code when Podman has one.
 *
 * `vectraguard-entry --stop NAME` (run by `vectraguard exec` when it is
 * interrupted, as another exec) sends SIGTERM to every process whose command
 * line is exactly this program's with NAME — the exec's supervisor, which
 * passes it on to the command's group. It needs nothing of the image (no
 * shell, no kill). A sandbox process disguised with that command line gets
 * the signal too: it is the sandbox's own.
 *
 * `vectraguard-entry --await` (Docker Engine, runtime/docker/): Docker cannot
 * set a container up without starting its command, so the container's command
 * is this, and nothing of the run's command runs until Vectra Guard has checked
 * the started container (its mounts, through /proc/PID/root of this process)
 * and planted its network listeners. It opens the FIFO RUN_DIR/start, which
 * blocks until Vectra Guard opens it for writing, reads it to its end, and
 * goes on only if it read exactly "start\n" (anything else, or an error, is
 * exit 125: nothing ran); then the command file RUN_DIR/command as above.
 *
 * `vectraguard-entry --await SECONDS` adds the backstop Podman gets from conmon's
 * timeout (the spec's backstop_timeout: the run's timeout, its kill grace and a
 * margin): a `vectraguard` killed with SIGKILL cannot stop its sandbox, and
 * Docker has no timeout of its own. So this program is the container's init,
 * PID 1 of its PID namespace (spec.py: no docker-init), and stays the command's
 * parent: at SECONDS after the start it exits 137, and the kernel kills all
 * that is left in the namespace, which ends the container. Being that init is
 * what makes the bound hold although the program runs as the sandbox's own
 * user: the kernel never delivers SIGKILL or SIGSTOP to a namespace's init
 * from inside the namespace, nor any signal it has no handler for
 * (pid_namespaces(7)), so `kill -STOP 1` or `kill -9 $PPID` changes nothing;
 * and once started it is not dumpable (PR_SET_DUMPABLE 0), so no process of
 * the sandbox can open its /proc/1/mem (ptrace itself is refused by the
 * seccomp profile). It does an init's other duties as tini did: it reaps
 * every process that ends up its child (orphans, those of `docker exec` too);
 * it runs the command in a process group of its own (with a terminal: the
 * foreground one, so that it reads it and gets its Ctrl-C, Ctrl-Z and
 * resizes itself) and passes on to the command every signal sent to it
 * (Docker's stop and kill) but the program faults and SIGCHLD (tini's set;
 * SIGTTIN, SIGTTOU and SIGPIPE it ignores for itself); it exits with the
 * command's status (128+N for a signal N) as soon as the command has exited.
 * Before the command runs, SIGTERM, SIGINT, SIGHUP or SIGQUIT end it with
 * 128+N (nothing ran). Ending it ends the container: the sandbox's own user
 * can do that through the signals it handles only by making the command end.
 *
 * Built static (no libraries needed in the image) by contrib/install.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_DIR "/run/vectraguard-run"
#define ENTRY_SELF "/run/vectraguard-entry" /* where the sandbox has this program (sandbox/entry.py ENTRY_TARGET) */
#define RUN_FILE RUN_DIR "/command"
#define START_FIFO RUN_DIR "/start"
#define START_WORD "start\n"
#define MAX_NAME 64
/* Read by sessions/enter.py in the installed program: this one takes a file name. */
const char protocol[] __attribute__((used)) = "vectraguard-entry-protocol: command-file-argument, stop, await, backstop, init";
#define MAX_FILE (8 * 1024 * 1024) /* well above ARG_MAX (2 MiB on Linux) */
#define EXIT_BAD_FILE 125

static char *data;
static size_t size, pos;
static char path[sizeof RUN_DIR + 1 + MAX_NAME + 1] = RUN_FILE;
static char status_path[sizeof path + sizeof ".status"];
static volatile pid_t group;
static volatile sig_atomic_t stopped_by; /* --await SECONDS: a signal that ends this program before the command runs */

static void fail(const char *what) {
    fprintf(stderr, "vectraguard-entry: %s: %s\n", path, what);
    exit(EXIT_BAD_FILE);
}

/* RUN_DIR/NAME for a plain file name; fails on anything else. */
static void choose(const char *name) {
    size_t length = strlen(name);
    if (length == 0 || length > MAX_NAME || name[0] == '.' || name[0] == '-')
        fail("bad command file name");
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            fail("bad command file name");
    }
    snprintf(path, sizeof path, "%s/%s", RUN_DIR, name);
}

/* The next NUL-terminated field; fails on a truncated file. */
static char *field(void) {
    char *start = data + pos;
    char *end = memchr(start, '\0', size - pos);
    if (end == NULL)
        fail("truncated");
    pos = (size_t)(end - data) + 1;
    return start;
}

static size_t count(void) {
    char *text = field(), *end;
    errno = 0;
    unsigned long n = strtoul(text, &end, 10);
    if (errno || end == text || *end != '\0' || n > MAX_FILE)
        fail("bad count");
    return (size_t)n;
}

static _Noreturn void run(char **argv) {
    execvp(argv[0], argv);
    int err = errno;
    fprintf(stderr, "vectraguard-entry: exec %s failed: %s\n", argv[0], strerror(err));
    _exit(err == ENOENT ? 127 : 126);
}

static void pass_on(int sig) {
    if (group > 0)
        kill(-group, sig);
}

/* A line to the status FIFO; nobody reading (ENXIO) or anything else: no report. */
static void report(const char *what, long value) {
    int fd = open(status_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    char line[64];
    int n = snprintf(line, sizeof line, "%s %ld\n", what, value);
    if (write(fd, line, (size_t)n) < 0) {
        /* the reader went away: nothing to tell */
    }
    close(fd);
}

/* An exec's command as a child in a group of its own; its status reported and returned. */
static int supervise(char **argv) {
    pid_t child = fork();
    if (child < 0)
        fail(strerror(errno));
    if (child == 0) {
        setpgid(0, 0);
        run(argv);
    }
    setpgid(child, child); /* also here: no signal may find the group missing */
    group = child;
    struct sigaction action = {.sa_handler = pass_on};
    sigemptyset(&action.sa_mask);
    int passed[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof passed / sizeof *passed; i++)
        sigaction(passed[i], &action, NULL);
    report("pid", (long)child);
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            fail(strerror(errno));
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    report("exit", code);
    return code;
}

/* --await SECONDS: the container's init (see above). */

/* What the init passes on to the command: every signal but the program faults (tini's set), SIGCHLD (its own
   children ending), SIGKILL and SIGSTOP (no handler takes them), and SIGTTIN, SIGTTOU and SIGPIPE, which it
   ignores for itself (its one message may go to a terminal whose foreground is the command's). */
static int passed_on(int sig) {
    switch (sig) {
    case SIGFPE: case SIGILL: case SIGSEGV: case SIGBUS: case SIGABRT: case SIGTRAP: case SIGSYS:
    case SIGCHLD: case SIGKILL: case SIGSTOP: case SIGTTIN: case SIGTTOU: case SIGPIPE:
        return 0;
    default:
        return 1;
    }
}

static void on_stop(int sig) {
    stopped_by = sig;
}

/* Before the command runs, these end this program: a handler of ours, since an init gets no signal it has none
   for (Docker's stop would wait for its SIGKILL); no SA_RESTART, so a blocking open or read returns EINTR. */
static void stop_before_start(void) {
    struct sigaction action = {.sa_handler = on_stop};
    sigemptyset(&action.sa_mask);
    int ending[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    for (size_t i = 0; i < sizeof ending / sizeof *ending; i++)
        sigaction(ending[i], &action, NULL);
}

static void exit_if_stopped(void) {
    if (stopped_by)
        exit(128 + stopped_by); /* nothing of the command ran */
}

static void noted(int sig) {
    (void)sig; /* never runs: the signals are blocked and taken by sigtimedwait; the handler makes the init get them */
}

static struct sigaction saved[NSIG]; /* the dispositions the command gets back before its exec */
static char changed[NSIG];

static void set_action(int sig, const struct sigaction *action) {
    if (sigaction(sig, action, &saved[sig]) == 0)
        changed[sig] = 1;
}

/* The command as a child in a process group of its own, every child reaped, signals passed on; the command's
   status, or 137 once SECONDS have passed since the start (see above). */
static int init(char **argv, unsigned long seconds) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)seconds;
    sigset_t handled, old;
    sigemptyset(&handled);
    for (int sig = 1; sig < NSIG; sig++)
        if (passed_on(sig) || sig == SIGCHLD)
            sigaddset(&handled, sig); /* fails for the C library's own real-time signals: not handled */
    sigprocmask(SIG_BLOCK, &handled, &old); /* first: none may come between its handler and the wait below */
    exit_if_stopped();
    struct sigaction noting = {.sa_handler = noted}, ignoring = {.sa_handler = SIG_IGN};
    sigemptyset(&noting.sa_mask);
    sigemptyset(&ignoring.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&handled, sig) == 1)
            set_action(sig, &noting);
    set_action(SIGTTIN, &ignoring);
    set_action(SIGTTOU, &ignoring);
    set_action(SIGPIPE, &ignoring);
    /* As PID 1 every orphan of the namespace comes here anyway; not PID 1 (a test), those of the command do. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t child = fork();
    if (child < 0)
        fail(strerror(errno));
    if (child == 0) {
        setpgid(0, 0);
        /* The terminal's foreground group (SIGTTOU still ignored here, as it must be for that), as tini did. */
        for (int fd = 0; fd <= 2; fd++)
            if (isatty(fd) && tcsetpgrp(fd, getpid()) == 0)
                break;
        for (int sig = 1; sig < NSIG; sig++)
            if (changed[sig])
                sigaction(sig, &saved[sig], NULL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        run(argv);
    }
    setpgid(child, child); /* also here: a group of its own whichever of the two runs first */
    for (;;) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            if (pid == child)
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        struct timespec at, left;
        clock_gettime(CLOCK_MONOTONIC, &at);
        left.tv_sec = deadline.tv_sec - at.tv_sec;
        left.tv_nsec = deadline.tv_nsec - at.tv_nsec;
        if (left.tv_nsec < 0) {
            left.tv_nsec += 1000000000L;
            left.tv_sec--;
        }
        if (left.tv_sec < 0) { /* the clock decides, checked on every wake-up: no signal the sandbox sends delays it */
            kill(-child, SIGKILL);
            kill(child, SIGKILL);
            /* Said only after the kill, and without waiting: the command may have suspended the terminal that
             * is our stderr (tcflow TCOOFF), where a blocking write would keep PID 1, and so the sandbox, for
             * ever (found by an outside attack). */
            int flags = fcntl(STDERR_FILENO, F_GETFL);
            if (flags >= 0 && fcntl(STDERR_FILENO, F_SETFL, flags | O_NONBLOCK) == 0) {
                char said[160];
                int length = snprintf(said, sizeof said, "vectraguard-entry: the run's time (%lu s with its grace) is "
                                      "over and Vectra Guard did not stop it: killed\n", seconds);
                if (length > 0 && write(STDERR_FILENO, said, (size_t)length) < 0) {
                    /* nothing to do: the exit below is what matters */
                }
            }
            _exit(128 + SIGKILL); /* as PID 1, this exit kills all that is left in the namespace; no stdio flush */
        }
        siginfo_t info;
        int sig = sigtimedwait(&handled, &info, &left);
        if (sig > 0 && sig != SIGCHLD)
            kill(child, sig); /* still ours until reaped above: no other process can have its pid */
    }
}

/* SIGTERM to the supervisors of exec NAME (see above); the number signalled is the exit status, capped. */
static int stop(const char *name) {
    char want[sizeof ENTRY_SELF + 1 + MAX_NAME + 1];
    size_t want_length = (size_t)snprintf(want, sizeof want, "%s%c%s", ENTRY_SELF, '\0', name) + 1;
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        fail(strerror(errno));
    int signalled = 0;
    pid_t self = getpid();
    for (struct dirent *entry; (entry = readdir(proc)) != NULL;) {
        char *end;
        long pid = strtol(entry->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == self)
            continue;
        char file[64], line[sizeof want + 1];
        snprintf(file, sizeof file, "/proc/%ld/cmdline", pid);
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t got = read(fd, line, sizeof line);
        close(fd);
        if (got == (ssize_t)want_length && memcmp(line, want, want_length) == 0 && kill((pid_t)pid, SIGTERM) == 0)
            signalled++;
    }
    closedir(proc);
    return signalled > 100 ? 100 : signalled;
}

/* Blocks until Vectra Guard says start through the FIFO (see --await above); fails on anything else. */
static void await_start(void) {
    int fd;
    while ((fd = open(START_FIFO, O_RDONLY | O_CLOEXEC)) < 0) {
        exit_if_stopped();
        if (errno != EINTR) {
            fprintf(stderr, "vectraguard-entry: %s: %s\n", START_FIFO, strerror(errno));
            exit(EXIT_BAD_FILE);
        }
    }
    char word[sizeof START_WORD];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, word + got, sizeof word - got);
        exit_if_stopped();
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == sizeof word)
            break; /* one byte more than the word: not it */
    }
    close(fd);
    if (got != sizeof START_WORD - 1 || memcmp(word, START_WORD, got) != 0) {
        fprintf(stderr, "vectraguard-entry: %s: no start: nothing ran\n", START_FIFO);
        exit(EXIT_BAD_FILE);
    }
}

int main(int argc, char **argv_in) {
    if (argc == 3 && strcmp(argv_in[1], "--stop") == 0) {
        choose(argv_in[2]); /* validates the name */
        return stop(argv_in[2]);
    }
    unsigned long backstop_s = 0;
    if ((argc == 2 || argc == 3) && strcmp(argv_in[1], "--await") == 0) {
        if (argc == 3) {
            char *end;
            errno = 0;
            backstop_s = strtoul(argv_in[2], &end, 10);
            if (errno || end == argv_in[2] || *end != '\0' || backstop_s == 0 || backstop_s > 100L * 365 * 86400)
                fail("usage: vectraguard-entry --await [SECONDS]");
            stop_before_start();
        }
        await_start();
        /* The sandbox's processes, of the same user, cannot open its /proc/PID/mem; fails closed (nothing ran). */
        if (backstop_s > 0 && prctl(PR_SET_DUMPABLE, 0) != 0)
            fail(strerror(errno));
        argc = 1; /* then the run's command file, as for a run */
    }
    if (argc > 2)
        fail("usage: vectraguard-entry [NAME] | --stop NAME | --await [SECONDS]");
    if (argc == 2) {
        choose(argv_in[1]);
        snprintf(status_path, sizeof status_path, "%s.status", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        fail(strerror(errno));
    data = malloc(MAX_FILE + 1);
    if (data == NULL)
        fail("out of memory");
    for (;;) {
        ssize_t got = read(fd, data + size, MAX_FILE + 1 - size);
        if (got < 0 && errno == EINTR) {
            exit_if_stopped();
            continue;
        }
        if (got < 0)
            fail(strerror(errno));
        if (got == 0)
            break;
        size += (size_t)got;
        if (size > MAX_FILE)
            fail("too large");
    }
    close(fd);
    if (strcmp(field(), "VGE1") != 0)
        fail("not a command file");
    char *cwd = field();
    size_t nenv = count();
    for (size_t i = 0; i < nenv; i++) {
        char *entry = field();
        char *equals = strchr(entry, '=');
        if (equals == NULL || equals == entry)
            fail("bad environment entry");
        *equals = '\0';
        if (setenv(entry, equals + 1, 1) != 0)
            fail(strerror(errno));
    }
    size_t nargv = count();
    if (nargv == 0 || nargv > size)
        fail("no command");
    char **argv = calloc(nargv + 1, sizeof *argv);
    if (argv == NULL)
        fail("out of memory");
    for (size_t i = 0; i < nargv; i++)
        argv[i] = field();
    if (pos != size)
        fail("trailing bytes");
    if (chdir(cwd) != 0) {
        fprintf(stderr, "vectraguard-entry: cannot enter the working directory %s: %s\n", cwd, strerror(errno));
        return 126;
    }
    if (status_path[0] != '\0')
        return supervise(argv);
    if (backstop_s > 0)
        return init(argv, backstop_s);
    run(argv);
}
