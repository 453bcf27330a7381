/*
 * vectraguard-entry: the first program of every sandbox, run by the init (tini).
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
 * Built static (no libraries needed in the image) by contrib/install.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_FILE "/run/vectraguard-run/command"
#define MAX_FILE (8 * 1024 * 1024) /* well above ARG_MAX (2 MiB on Linux) */
#define EXIT_BAD_FILE 125

static char *data;
static size_t size, pos;

static void fail(const char *what) {
    fprintf(stderr, "vectraguard-entry: %s: %s\n", RUN_FILE, what);
    exit(EXIT_BAD_FILE);
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

int main(void) {
    int fd = open(RUN_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        fail(strerror(errno));
    data = malloc(MAX_FILE + 1);
    if (data == NULL)
        fail("out of memory");
    for (;;) {
        ssize_t got = read(fd, data + size, MAX_FILE + 1 - size);
        if (got < 0 && errno == EINTR)
            continue;
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
    execvp(argv[0], argv);
    int err = errno;
    fprintf(stderr, "vectraguard-entry: exec %s failed: %s\n", argv[0], strerror(err));
    return err == ENOENT ? 127 : 126;
}
