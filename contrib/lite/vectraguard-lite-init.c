/*
 * vectraguard-lite-init: the first process of an `isolation: lite` sandbox.
 *
 * bubblewrap runs it in the sandbox's namespaces, after building the mount
 * namespace and pivoting into the new root, as the sandbox's uid with
 * CAP_NET_BIND_SERVICE (forwarders on ports below 1024), CAP_SYS_ADMIN and
 * CAP_SETPCAP in the sandbox's own user namespace only (bwrap --cap-add;
 * vectraguard/lite/bwrap_argv.py). It locks the process down and execs the
 * command:
 *
 *   vectraguard-lite-init --control FD --seccomp FD [--listen ADDR:PORT]...
 *       [--noexec PATH]... [--read PATH]... [--exec PATH]... [--write PATH]...
 *       [--device PATH]... [--rlimit NAME=SOFT:HARD]... [--tty FD] [--devpts PATH]
 *       -- COMMAND [ARG]...
 *
 * Every option takes one value, in the next argument; PATHs are absolute.
 * --control FD is an AF_UNIX SOCK_STREAM socket shared with the parent (the
 * runner, outside). --seccomp FD is read from its current offset to EOF: raw
 * classic BPF, an array of struct sock_filter (8 bytes each), as libseccomp's
 * seccomp_export_bpf writes it.
 *
 * Sequence, and what the parent sees on the control socket:
 *  0. Parse and check every option, and read the seccomp program, before
 *     anything is created, so that a malformed line creates nothing.
 *  1. Create the TCP listeners (--listen, in the sandbox's network namespace:
 *     the egress proxy's entry points, served by the parent).
 *  2. Send "R" with the listeners attached (SCM_RIGHTS, in the order given),
 *     then close them here.
 *  3. Wait for one byte: "G" goes on; anything else or EOF exits 125 without
 *     running anything. Meanwhile the parent puts this process into its
 *     cgroups and checks its mounts through /proc/PID/root. With --tty FD
 *     (a pseudo-terminal of the parent's), make it the controlling terminal
 *     of a session of its own. Mount --devpts.
 *  4. If there are --noexec paths: enter a mount namespace of its own (a copy
 *     of the one checked) and remount each PATH noexec,nosuid,nodev, keeping
 *     its other flags.
 *  5. Drop every capability for good, lock the securebits, set no_new_privs,
 *     and check /proc/self/status says so.
 *  6. Apply the --rlimit limits.
 *  7. Landlock: --read, --exec, --write and --device rules, signal and
 *     abstract-socket scopes.
 *  8. Mark every inherited descriptor close-on-exec, then install the seccomp
 *     filter, the last step (the profile may deny what the steps above use).
 *  9. execvp(COMMAND, ARGS) with the PATH bwrap set.
 *
 * Any failure up to the exec sends "F<message>\n" and exits 125; the message
 * is one line: "vectraguard-lite-init: <what failed>: <strerror>". If the exec
 * fails, "E" and the errno (4 bytes, native int) are sent, and the exit status
 * is 127 for ENOENT, 126 otherwise (as vectraguard-entry and tini). When the
 * exec succeeds the control socket is closed by it: the parent reads EOF.
 *
 * Built static (the sandbox's root may have no C library) by contrib/install.sh:
 *   gcc -static -Os -Wall -Werror -o vectraguard-lite-init vectraguard-lite-init.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXIT_INIT_FAILED 125
#define MAX_LISTENERS 64 /* well under SCM_MAX_FD (253) */

/* Landlock constants newer than some distributions' headers (Debian 12: ABI 2). */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* struct landlock_ruleset_attr as of ABI 6; older kernels accept the longer
 * struct as long as the fields they do not know are zero. */
struct ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_ABI1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1) /* bits 0..12 */
/* The rights that apply to a file (the rest only to directories). */
#define FS_FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
                        LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
                        LANDLOCK_ACCESS_FS_IOCTL_DEV)

enum option { OPT_CONTROL, OPT_SECCOMP, OPT_LISTEN, OPT_NOEXEC, OPT_READ, OPT_EXEC, OPT_WRITE,
              OPT_DEVICE, OPT_RLIMIT, OPT_TTY, OPT_DEVPTS, OPT_COUNT };
static const char *const option_names[OPT_COUNT] = {
    "--control", "--seccomp", "--listen", "--noexec", "--read", "--exec", "--write", "--device", "--rlimit",
    "--tty", "--devpts",
};

static const struct { const char *name; int resource; } rlimit_names[] = {
    {"as", RLIMIT_AS}, {"core", RLIMIT_CORE}, {"cpu", RLIMIT_CPU}, {"data", RLIMIT_DATA},
    {"fsize", RLIMIT_FSIZE}, {"locks", RLIMIT_LOCKS}, {"memlock", RLIMIT_MEMLOCK},
    {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE}, {"nofile", RLIMIT_NOFILE},
    {"nproc", RLIMIT_NPROC}, {"rss", RLIMIT_RSS}, {"rtprio", RLIMIT_RTPRIO},
    {"rttime", RLIMIT_RTTIME}, {"sigpending", RLIMIT_SIGPENDING}, {"stack", RLIMIT_STACK},
};

static int argc_options; /* argv[1 .. argc_options-1] are option/value pairs */
static char **args;
static int control_fd = -1;
static int seccomp_fd = -1;
static int tty_fd = -1;
static struct sock_filter filter[BPF_MAXINSNS];
static unsigned short filter_length;

/* Report on the control socket (stderr until it is known) and exit 125. */
__attribute__((noreturn, format(printf, 2, 3)))
static void fail(int err, const char *format, ...) {
    char line[1024] = "Fvectraguard-lite-init: ";
    size_t length = strlen(line);
    va_list ap;
    va_start(ap, format);
    vsnprintf(line + length, sizeof line - length, format, ap);
    va_end(ap);
    length = strlen(line);
    if (err != 0)
        length += (size_t)snprintf(line + length, sizeof line - length, ": %s", strerror(err));
    if (length > sizeof line - 2)
        length = sizeof line - 2;
    for (size_t i = 0; i < length; i++) /* a path may hold a newline: keep it one line */
        if (iscntrl((unsigned char)line[i]))
            line[i] = '?';
    line[length++] = '\n';
    if (control_fd >= 0)
        send(control_fd, line, length, MSG_NOSIGNAL);
    else if (write(STDERR_FILENO, line + 1, length - 1) < 0) {
        /* nowhere left to say it */
    }
    _exit(EXIT_INIT_FAILED);
}

static enum option option_of(const char *arg) {
    for (int i = 0; i < OPT_COUNT; i++)
        if (strcmp(arg, option_names[i]) == 0)
            return (enum option)i;
    return OPT_COUNT;
}

/* The next value given for `option` after position *cursor (start at 1). */
static const char *next_value(enum option option, int *cursor) {
    while (*cursor + 1 < argc_options) {
        int at = *cursor;
        *cursor += 2;
        if (option_of(args[at]) == option)
            return args[at + 1];
    }
    return NULL;
}

static int parse_fd(const char *text) {
    char *end;
    errno = 0;
    long fd = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || fd < 0 || fd > INT_MAX)
        return -1;
    return fcntl((int)fd, F_GETFD) < 0 ? -1 : (int)fd;
}

/* "A.B.C.D:PORT", port 1..65535. */
static int parse_listen(const char *text, struct sockaddr_in *address) {
    char host[INET_ADDRSTRLEN];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof host)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port == 0 || port > 65535 ||
        !isdigit((unsigned char)colon[1]))
        return -1;
    memset(address, 0, sizeof *address);
    address->sin_family = AF_INET;
    address->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &address->sin_addr) == 1 ? 0 : -1;
}

static int parse_limit_value(const char *text, const char *end_at, rlim_t *value) {
    static const char unlimited[] = "unlimited";
    if ((size_t)(end_at - text) == strlen(unlimited) && strncmp(text, unlimited, strlen(unlimited)) == 0) {
        *value = RLIM_INFINITY;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long number = strtoull(text, &end, 10);
    if (errno != 0 || end == text || end != end_at || !isdigit((unsigned char)text[0]))
        return -1;
    *value = (rlim_t)number;
    return *value == RLIM_INFINITY ? -1 : 0;
}

/* "NAME=SOFT:HARD", each limit a decimal number or "unlimited", soft <= hard. */
static int parse_rlimit(const char *text, int *resource, struct rlimit *limit) {
    const char *equals = strchr(text, '='), *colon = equals ? strchr(equals, ':') : NULL;
    if (colon == NULL)
        return -1;
    *resource = -1;
    for (size_t i = 0; i < sizeof rlimit_names / sizeof rlimit_names[0]; i++)
        if (strlen(rlimit_names[i].name) == (size_t)(equals - text) &&
            strncmp(text, rlimit_names[i].name, (size_t)(equals - text)) == 0)
            *resource = rlimit_names[i].resource;
    if (*resource < 0 || parse_limit_value(equals + 1, colon, &limit->rlim_cur) != 0 ||
        parse_limit_value(colon + 1, colon + 1 + strlen(colon + 1), &limit->rlim_max) != 0)
        return -1;
    return limit->rlim_cur <= limit->rlim_max ? 0 : -1;
}

/* Find --control first so that every later failure goes to the parent. */
static void find_control(int argc, char **argv) {
    for (int i = 1; i + 1 < argc && strcmp(argv[i], "--") != 0; i += 2)
        if (strcmp(argv[i], "--control") == 0)
            control_fd = parse_fd(argv[i + 1]);
    if (control_fd < 0)
        fail(0, "--control FD: missing, or not an open descriptor");
    int type = 0;
    socklen_t size = sizeof type;
    if (getsockopt(control_fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_STREAM) {
        int fd = control_fd;
        control_fd = -1;
        fail(0, "--control %d: not a stream socket", fd);
    }
}

/* Check every option's syntax; returns the index of COMMAND in argv. */
static int parse_options(int argc, char **argv) {
    int i = 1, listeners = 0, seen_control = 0;
    for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
        enum option option = option_of(argv[i]);
        if (option == OPT_COUNT)
            fail(0, "unknown option %s", argv[i]);
        if (i + 1 >= argc)
            fail(0, "%s: missing value", argv[i]);
        const char *value = argv[i + 1];
        struct sockaddr_in address;
        struct rlimit limit;
        int resource;
        switch (option) {
        case OPT_CONTROL:
            if (seen_control++)
                fail(0, "--control given twice");
            break;
        case OPT_SECCOMP:
            if (seccomp_fd >= 0)
                fail(0, "--seccomp given twice");
            if ((seccomp_fd = parse_fd(value)) < 0)
                fail(0, "--seccomp %s: not an open descriptor", value);
            break;
        case OPT_LISTEN:
            if (parse_listen(value, &address) != 0)
                fail(0, "--listen %s: not an IPv4 ADDRESS:PORT", value);
            if (++listeners > MAX_LISTENERS)
                fail(0, "--listen: more than %d listeners", MAX_LISTENERS);
            break;
        case OPT_TTY:
            if (tty_fd >= 0)
                fail(0, "--tty given twice");
            if ((tty_fd = parse_fd(value)) < 0 || !isatty(tty_fd))
                fail(0, "--tty %s: not an open terminal", value);
            break;
        case OPT_RLIMIT:
            if (parse_rlimit(value, &resource, &limit) != 0)
                fail(0, "--rlimit %s: not NAME=SOFT:HARD with a known name and SOFT <= HARD", value);
            break;
        default: /* a path option */
            if (value[0] != '/')
                fail(0, "%s %s: not an absolute path", argv[i], value);
        }
    }
    if (seccomp_fd < 0)
        fail(0, "--seccomp FD is required");
    if (i + 1 >= argc)
        fail(0, "no command after --");
    argc_options = i;
    return i + 1;
}

/* The whole seccomp program, read now so that a bad one runs nothing. */
static void read_seccomp(void) {
    size_t size = 0;
    char *buffer = (char *)filter;
    for (;;) {
        char probe;
        char *into = size < sizeof filter ? buffer + size : &probe;
        ssize_t got = read(seccomp_fd, into, size < sizeof filter ? sizeof filter - size : 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            fail(errno, "reading the seccomp program");
        if (got == 0)
            break;
        if (size >= sizeof filter)
            fail(0, "seccomp program: more than %d instructions", BPF_MAXINSNS);
        size += (size_t)got;
    }
    close(seccomp_fd);
    if (size == 0 || size % sizeof filter[0] != 0)
        fail(0, "seccomp program: %zu bytes, not a positive multiple of %zu", size, sizeof filter[0]);
    filter_length = (unsigned short)(size / sizeof filter[0]);
}

static void send_listeners(void) {
    int fds[MAX_LISTENERS], count = 0, cursor = 1;
    const char *value;
    while ((value = next_value(OPT_LISTEN, &cursor)) != NULL) {
        struct sockaddr_in address;
        int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        parse_listen(value, &address); /* checked by parse_options */
        if (fd < 0)
            fail(errno, "--listen %s: socket", value);
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
            fail(errno, "--listen %s: SO_REUSEADDR", value);
        if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0)
            fail(errno, "--listen %s: bind", value);
        if (listen(fd, 128) != 0)
            fail(errno, "--listen %s: listen", value);
        fds[count++] = fd;
    }
    union { char space[CMSG_SPACE(sizeof fds)]; struct cmsghdr align; } control;
    struct iovec byte = {.iov_base = "R", .iov_len = 1};
    struct msghdr message = {.msg_iov = &byte, .msg_iovlen = 1};
    if (count > 0) {
        size_t size = (size_t)count * sizeof(int);
        memset(&control, 0, sizeof control);
        message.msg_control = control.space;
        message.msg_controllen = CMSG_SPACE(size);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(size);
        memcpy(CMSG_DATA(header), fds, size);
    }
    ssize_t sent;
    do
        sent = sendmsg(control_fd, &message, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent != 1)
        fail(errno, "sending the listeners on the control socket");
    for (int i = 0; i < count; i++)
        close(fds[i]);
}

static void wait_for_go(void) {
    char answer = 0;
    ssize_t got;
    do
        got = recv(control_fd, &answer, 1, 0);
    while (got < 0 && errno == EINTR);
    if (got != 1 || answer != 'G')
        _exit(EXIT_INIT_FAILED); /* refused by the parent: it knows why */
}

/*
 * bwrap 0.8 cannot make its tmpfs noexec, and a noexec mount is what stops
 * `ld.so /tmp/x` (Landlock's EXECUTE does not cover mmap(PROT_EXEC)). The flags
 * the mount has are kept: the kernel refuses a remount that would clear a
 * locked flag (read-only, atime...) of a mount inherited from the host.
 */
static void remount_noexec(void) {
    static const struct { unsigned long st, ms; } kept[] = {
        {ST_RDONLY, MS_RDONLY}, {ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV},
        {ST_SYNCHRONOUS, MS_SYNCHRONOUS}, {ST_MANDLOCK, MS_MANDLOCK}, {ST_NOATIME, MS_NOATIME},
        {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
    };
    int cursor = 1;
    const char *path = next_value(OPT_NOEXEC, &cursor);
    /* With --dev, bwrap builds the mounts in one user namespace and runs us
     * in a second one nested in it (to map uid 0, then the sandbox's uid):
     * our CAP_SYS_ADMIN does not cover its mount namespace. A mount namespace
     * of our own, a copy of it, is ours to change; the copied mounts come
     * locked (their flags can be added to, never cleared), which is all a
     * noexec remount needs. */
    if (path != NULL && unshare(CLONE_NEWNS) != 0)
        fail(errno, "--noexec: a mount namespace of its own");
    for (; path != NULL; path = next_value(OPT_NOEXEC, &cursor)) {
        struct statvfs info;
        if (statvfs(path, &info) != 0)
            fail(errno, "--noexec %s: statvfs", path);
        unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOEXEC | MS_NOSUID | MS_NODEV;
        for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
            if (info.f_flag & kept[i].st)
                flags |= kept[i].ms;
        if (mount(NULL, path, NULL, flags, NULL) != 0)
            fail(errno, "--noexec %s: remount", path);
    }
}

/*
 * What a container gets and bubblewrap's options cannot give without --dev
 * (whose nested user namespace keeps the network namespace out of our
 * reach: bwrap_argv.py): a devpts instance of the sandbox's own, for
 * programs that open pseudo-terminals (none of the host's are in it).
 * (sysfs cannot be mounted here: the kernel allows a new one in a user
 * namespace only where one is already fully visible, and bwrap's new root
 * has none; a lite sandbox has no /sys.)
 */
static void mount_devpts(void) {
    int cursor = 1;
    const char *path;
    while ((path = next_value(OPT_DEVPTS, &cursor)) != NULL)
        if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") != 0)
            fail(errno, "--devpts %s: mount", path);
}

/* The value of the line "NAME:\t..." in /proc/self/status (in `base`), or -1. */
static long long status_field(const char *status, const char *name, int base) {
    size_t length = strlen(name);
    for (const char *line = status; *line != '\0'; line++) {
        if (strncmp(line, name, length) == 0 && line[length] == ':')
            return strtoll(line + length + 1, NULL, base);
        if ((line = strchr(line, '\n')) == NULL)
            break;
    }
    return -1;
}

/* What the kernel says this process holds, not what the calls above returned. */
static void check_status(void) {
    static char status[16384];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail(errno, "checking the capabilities: /proc/self/status");
    size_t size = 0;
    for (;;) {
        ssize_t got = read(fd, status + size, sizeof status - 1 - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            fail(errno, "checking the capabilities: reading /proc/self/status");
        if (got == 0 || (size += (size_t)got) == sizeof status - 1)
            break;
    }
    close(fd);
    status[size] = '\0';
    static const char *const sets[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (status_field(status, sets[i], 16) != 0)
            fail(0, "checking the capabilities: %s is not empty", sets[i]);
    if (status_field(status, "NoNewPrivs", 10) != 1)
        fail(0, "checking the capabilities: no_new_privs is not set");
}

static void drop_capabilities(void) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
        fail(errno, "clearing the ambient capabilities");
    /* Needs CAP_SETPCAP in the sandbox's user namespace (bwrap --cap-add
     * CAP_SETPCAP), as dropping the bounding set does: with it held, locking
     * the securebits costs nothing, and no later exec can regain a capability
     * through uid 0 or a setuid transition, whatever the bounding set. */
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
              SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
              SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0) != 0)
        fail(errno, "locking the securebits (bwrap needs --cap-add CAP_SETPCAP)");
    FILE *file = fopen("/proc/sys/kernel/cap_last_cap", "re");
    int last = -1;
    if (file == NULL || fscanf(file, "%d", &last) != 1 || last < 0 || last > 63)
        fail(file ? 0 : errno, "reading /proc/sys/kernel/cap_last_cap");
    fclose(file);
    for (int cap = 0; cap <= last; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
            fail(errno, "dropping capability %d from the bounding set", cap);
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
    memset(none, 0, sizeof none);
    if (syscall(SYS_capset, &header, none) != 0)
        fail(errno, "clearing the capability sets");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        fail(errno, "setting no_new_privs");
    check_status();
}

static void apply_rlimits(void) {
    int cursor = 1, resource;
    const char *value;
    while ((value = next_value(OPT_RLIMIT, &cursor)) != NULL) {
        struct rlimit limit;
        parse_rlimit(value, &resource, &limit); /* checked by parse_options */
        if (setrlimit(resource, &limit) != 0)
            fail(errno, "--rlimit %s", value);
    }
}

static void add_rules(int ruleset, enum option option, uint64_t access, uint64_t handled) {
    int cursor = 1;
    const char *path;
    while ((path = next_value(option, &cursor)) != NULL) {
        struct landlock_path_beneath_attr rule = {.allowed_access = access & handled};
        struct stat info;
        rule.parent_fd = open(path, O_PATH | O_CLOEXEC);
        if (rule.parent_fd < 0 || fstat(rule.parent_fd, &info) != 0)
            fail(errno, "%s %s", option_names[option], path);
        if (!S_ISDIR(info.st_mode)) /* the kernel refuses directory rights on a file */
            rule.allowed_access &= FS_FILE_RIGHTS;
        if (rule.allowed_access != 0 &&
            syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0)
            fail(errno, "%s %s: landlock_add_rule", option_names[option], path);
        close(rule.parent_fd);
    }
}

/*
 * Network rights are not handled: the sandbox has a network namespace of its
 * own, holding only loopback and the listeners the parent serves, so there is
 * nothing else to connect to or bind for.
 */
static void apply_landlock(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0 && (errno == ENOSYS || errno == EOPNOTSUPP))
        fail(errno, "Landlock is needed for isolation lite, and this kernel does not provide it");
    if (abi < 1)
        fail(errno, "landlock_create_ruleset (version)");
    struct ruleset_attr attr = {.handled_access_fs = FS_ABI1};
    if (abi >= 2)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    if (abi >= 6)
        attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (ruleset < 0)
        fail(errno, "landlock_create_ruleset");
    uint64_t handled = attr.handled_access_fs;
    uint64_t write = handled & ~(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_IOCTL_DEV |
                                 LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK);
    add_rules(ruleset, OPT_READ, FS_READ, handled);
    add_rules(ruleset, OPT_EXEC, FS_READ | LANDLOCK_ACCESS_FS_EXECUTE, handled);
    add_rules(ruleset, OPT_WRITE, write, handled);
    add_rules(ruleset, OPT_DEVICE, LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
              LANDLOCK_ACCESS_FS_IOCTL_DEV, handled);
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
        fail(errno, "landlock_restrict_self");
    close(ruleset);
}

int main(int argc, char **argv) {
    args = argv;
    find_control(argc, argv);
    int command = parse_options(argc, argv);
    read_seccomp();
    send_listeners();
    wait_for_go();
    mount_devpts();
    /* A terminal session's pseudo-terminal (the parent's, never the caller's
     * own terminal) becomes the controlling terminal of the session bwrap's
     * --new-session made: job control and ^C work inside. */
    /* bwrap's setsid() ran in its pid 1, before it forked us: a session of
     * our own first (we lead no process group, so setsid works). */
    if (tty_fd >= 0 && setsid() < 0)
        fail(errno, "--tty %d: setsid", tty_fd);
    if (tty_fd >= 0 && ioctl(tty_fd, TIOCSCTTY, 0) != 0)
        fail(errno, "--tty %d: TIOCSCTTY", tty_fd);
    remount_noexec();
    drop_capabilities();
    apply_rlimits();
    apply_landlock();
    /* Nothing inherited reaches the command but stdin, stdout and stderr;
     * the control socket closes at the exec, which tells the parent. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        fail(errno, "marking the inherited descriptors close-on-exec");
    struct sock_fprog program = {.len = filter_length, .filter = filter};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) != 0)
        fail(errno, "installing the seccomp filter");
    execvp(argv[command], argv + command);
    int err = errno;
    char report[1 + sizeof err] = {'E'};
    memcpy(report + 1, &err, sizeof err);
    send(control_fd, report, sizeof report, MSG_NOSIGNAL);
    return err == ENOENT ? 127 : 126;
}
