/*
 * vgprobe - a posture and abuse probe run *inside* Vectra Guard sandboxes.
 *
 * Built by the test suite with `gcc -static -O2 -o vgprobe vgprobe.c` and
 * copied into the busybox test image as /usr/local/bin/vgprobe, so that the
 * tests can compare what a sandbox really is with what its profile promised.
 * Every subcommand prints exactly one line of JSON on stdout; diagnostics go
 * to stderr. Exit status is 0 unless a subcommand says otherwise, 2 on usage
 * errors.
 *
 *   syscalls             try each dangerous operation: {"op": "ok"|"EPERM"|...}
 *   allowed              ordinary operations the strict profile must keep working
 *   status               identity, capabilities, seccomp, rlimits, namespaces
 *   fork-bomb SECS [MAX] fork until fork fails, SECS pass or MAX children exist
 *   zombies N            leave N unreaped children behind for init to reap
 *   count-zombies        count processes in state Z
 *   mem-bomb MIB         allocate and touch MIB mebibytes (exit 1 if refused)
 *   write PATH           open PATH for appending: {"path", "result"}
 *   exec-tmp             copy self to /tmp and execute the copy
 *   exec-memfd           write self into memfds (plain, MFD_EXEC, MFD_NOEXEC_SEAL)
 *                        and try execveat, /proc/self/fd/N and an exec mapping
 *   exec-dropped DIR     the same for a named copy and an O_TMPFILE copy in DIR
 *   socket-families      socket/socketpair of every family, every netlink protocol
 *   connect-flood PORT N WORKERS HOSTS
 *                        N denied proxy requests (CONNECT flood-K.invalid) to
 *                        127.0.0.1:PORT from WORKERS processes, over HOSTS names
 *
 * Raw syscall(2) numbers are used where glibc has no wrapper, so the probe
 * sees what the kernel and the seccomp filter say, not what libc emulates.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <termios.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ JSON */

/* Each JSON object is printed as it is built; `n` counts its members so that
 * commas go in the right places. */
struct json {
    int n;
};

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_key(struct json *o, const char *key)
{
    fputs(o->n++ ? ", " : "", stdout);
    json_string(key);
    fputs(": ", stdout);
}

static void json_str(struct json *o, const char *key, const char *value)
{
    json_key(o, key);
    if (value)
        json_string(value);
    else
        fputs("null", stdout);
}

static void json_int(struct json *o, const char *key, long long value)
{
    json_key(o, key);
    printf("%lld", value);
}

/* --------------------------------------------------------------- helpers */

static const char *errno_name(int e)
{
    static char buf[32];
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *name = strerrorname_np(e);
    if (name)
        return name;
#endif
    snprintf(buf, sizeof buf, "errno-%d", e);
    return buf;
}

static const char *signal_name(int sig)
{
    static char buf[32];
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev) {
        snprintf(buf, sizeof buf, "killed:SIG%s", abbrev);
        return buf;
    }
#endif
    snprintf(buf, sizeof buf, "killed:%d", sig);
    return buf;
}

/* "ok" or the errno name of a raw syscall result (-1 with errno set). */
static const char *outcome(long r)
{
    return r < 0 ? errno_name(errno) : "ok";
}

/* Setup failed before the operation under test could be attempted: say so,
 * rather than report the setup's errno as if it were the answer. */
static const char *setup_failed(const char *step)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "setup-%s:%s", step, errno_name(errno));
    return buf;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_seconds(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' && *out >= 0;
}

/* --------------------------------------------------- isolated operations */

/* Every operation runs in a child of its own, for three reasons: one that
 * unexpectedly succeeds (unshare, chroot, setuid, personality) changes only
 * the child; a seccomp KILL or a SIGSEGV from a missing ABI is reported
 * instead of ending the probe; and the parent's state stays the same for the
 * next operation. The child writes its verdict into a pipe. */
typedef const char *(*operation)(void);

struct probe {
    const char *name;
    operation run;
};

static void run_isolated(struct json *o, const struct probe *p)
{
    int fds[2];
    char verdict[96] = "";

    fflush(stdout);
    if (pipe(fds) < 0) {
        json_str(o, p->name, setup_failed("pipe"));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        json_str(o, p->name, setup_failed("fork"));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        const char *r = p->run();
        ssize_t ignored = write(fds[1], r, strlen(r));
        (void)ignored;
        _exit(0);
    }
    close(fds[1]);
    ssize_t len = read(fds[0], verdict, sizeof verdict - 1);
    verdict[len > 0 ? len : 0] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (len <= 0 && WIFSIGNALED(status))
        snprintf(verdict, sizeof verdict, "%s", signal_name(WTERMSIG(status)));
    else if (len <= 0)
        snprintf(verdict, sizeof verdict, "exit:%d", WEXITSTATUS(status));
    json_str(o, p->name, verdict);
}

/* A process that should never have been created leaves at once. */
static const char *reap_clone_result(long pid)
{
    if (pid == 0)
        syscall(SYS_exit_group, 0);
    if (pid < 0)
        return errno_name(errno);
    waitpid((pid_t)pid, NULL, __WALL);
    return "ok";
}

static const char *op_unshare_user(void) { return outcome(syscall(SYS_unshare, CLONE_NEWUSER)); }

static const char *op_unshare_mount(void) { return outcome(syscall(SYS_unshare, CLONE_NEWNS)); }

static const char *op_clone_newuser(void)
{
    /* Zero stack and tid pointers: fork-like on every architecture, whatever
     * the order of clone's later arguments. */
    return reap_clone_result(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
}

/* struct clone_args as of CLONE_ARGS_SIZE_VER0; declared here because
 * <linux/sched.h> clashes with <sched.h>. */
struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static const char *op_clone3(void)
{
    struct clone_args_v0 args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
    return reap_clone_result(syscall(SYS_clone3, &args, sizeof args));
}

static const char *op_setns(void)
{
    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return setup_failed("open-ns");
    return outcome(syscall(SYS_setns, fd, CLONE_NEWNET));
}

/* /tmp/x as mount point; fall back to /tmp itself if it cannot be created. */
static const char *mount_target(void)
{
    return mkdir("/tmp/x", 0700) == 0 || errno == EEXIST ? "/tmp/x" : "/tmp";
}

static const char *op_mount(void)
{
    const char *target = mount_target();
    long r = mount("none", target, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m");
    const char *verdict = outcome(r);
    if (r == 0)
        umount2(target, MNT_DETACH);
    return verdict;
}

static const char *op_umount(void)
{
    /* Not a mount point: a privileged caller without the filter gets EINVAL
     * and nothing is unmounted. */
    return outcome(syscall(SYS_umount2, mount_target(), 0));
}

static const char *op_pivot_root(void)
{
    /* A path that does not exist: ENOENT for a privileged caller, so a
     * missing filter can never actually change the root. */
    return outcome(syscall(SYS_pivot_root, "/vgprobe-absent", "/vgprobe-absent"));
}

static const char *op_keyctl(void)
{
    return outcome(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}

static const char *op_add_key(void)
{
    long id = syscall(SYS_add_key, "user", "vgprobe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    const char *verdict = outcome(id);
    if (id >= 0)
        syscall(SYS_keyctl, KEYCTL_INVALIDATE, id);
    return verdict;
}

static const char *op_request_key(void)
{
    return outcome(
        syscall(SYS_request_key, "user", "vgprobe-absent", NULL, KEY_SPEC_PROCESS_KEYRING));
}

static const char *op_bpf(void)
{
    /* An empty program: EINVAL if the kernel lets us as far as the verifier. */
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.license = (uint64_t)(uintptr_t) "GPL";
    long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    const char *verdict = outcome(fd);
    if (fd >= 0)
        close((int)fd);
    return verdict;
}

static const char *op_perf_event_open(void)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    const char *verdict = outcome(fd);
    if (fd >= 0)
        close((int)fd);
    return verdict;
}

static const char *op_userfaultfd(void)
{
    /* UFFD_USER_MODE_ONLY is what an unprivileged caller may ask for when
     * vm.unprivileged_userfaultfd is 0, so "ok" means only the filter was
     * missing. */
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    const char *verdict = outcome(fd);
    if (fd >= 0)
        close((int)fd);
    return verdict;
}

static const char *op_io_uring_setup(void)
{
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    long fd = syscall(SYS_io_uring_setup, 1, &params);
    const char *verdict = outcome(fd);
    if (fd >= 0)
        close((int)fd);
    return verdict;
}

static const char *op_ptrace_traceme(void)
{
    return outcome(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
}

static const char *op_ptrace_attach_parent(void)
{
    /* PTRACE_SEIZE attaches without stopping the tracee, and our exit
     * detaches again: PTRACE_ATTACH would leave the parent group-stopped. */
    return outcome(ptrace(PTRACE_SEIZE, getppid(), NULL, NULL));
}

static long secret_in_parent = 42;

static const char *op_process_vm_readv(void)
{
    /* Same address in the parent: we are its fork. */
    long copy = 0;
    struct iovec local = {&copy, sizeof copy};
    struct iovec remote = {&secret_in_parent, sizeof secret_in_parent};
    return outcome(syscall(SYS_process_vm_readv, getppid(), &local, 1, &remote, 1, 0));
}

static const char *op_open_by_handle_at(void)
{
    struct {
        struct file_handle fh;
        unsigned char bytes[8];
    } handle;
    memset(&handle, 0, sizeof handle);
    handle.fh.handle_bytes = sizeof handle.bytes;
    handle.fh.handle_type = 1; /* FILEID_INO32_GEN */
    long fd = syscall(SYS_open_by_handle_at, AT_FDCWD, &handle.fh, O_RDONLY);
    const char *verdict = outcome(fd);
    if (fd >= 0)
        close((int)fd);
    return verdict;
}

static const char *op_kexec_load(void)
{
    /* An architecture field no kernel accepts: EINVAL after the permission
     * check, so even an unfiltered privileged caller loads (or unloads)
     * nothing. */
    return outcome(syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xFFFF0000UL));
}

static const char *op_init_module(void)
{
    static const char not_elf[4] = {0};
    return outcome(syscall(SYS_init_module, not_elf, sizeof not_elf, ""));
}

static const char *op_personality(void)
{
    return outcome(syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */));
}

/* Open a pty pair and make the slave our controlling terminal on fd 0:
 * TIOCSTI only works on the caller's own controlling terminal, so this is
 * the setup in which it would really inject input. Returns the master. */
static int pty_as_stdin(void)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
        return -1;
    const char *name = ptsname(master);
    if (!name || setsid() < 0)
        return -1;
    int slave = open(name, O_RDWR);
    if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0)
        return -1;
    return master;
}

static const char *ioctl_on_pty(unsigned long request, long arg_value)
{
    char arg = (char)arg_value;
    if (pty_as_stdin() < 0)
        return setup_failed("pty");
    /* raw syscall: the full 64-bit request reaches the filter unchanged */
    return outcome(syscall(SYS_ioctl, 0, request, &arg));
}

static const char *op_ioctl_tiocsti(void) { return ioctl_on_pty(TIOCSTI, 'x'); }

static const char *op_ioctl_tiocsti_high_bits(void)
{
#if ULONG_MAX > 0xFFFFFFFFUL
    /* the kernel truncates the request to 32 bits: still TIOCSTI */
    return ioctl_on_pty(0x100000000UL | TIOCSTI, 'x');
#else
    return "n/a";
#endif
}

static const char *op_ioctl_tioclinux(void)
{
    /* subcode 0 is invalid; on a pty the request is meaningless anyway */
    return ioctl_on_pty(TIOCLINUX, 0);
}

static const char *op_chroot(void) { return outcome(chroot("/tmp")); }

static const char *op_mknod_char(void)
{
    const char *path = "/tmp/vgprobe-null";
    long r = mknod(path, S_IFCHR | 0600, makedev(1, 3));
    const char *verdict = outcome(r);
    if (r == 0)
        unlink(path);
    return verdict;
}

static const char *op_setuid_root(void) { return outcome(setuid(0)); }

static const char *op_setgid_root(void) { return outcome(setgid(0)); }

static const char *socket_outcome(int domain, int type, int protocol)
{
    int fd = socket(domain, type, protocol);
    const char *verdict = outcome(fd);
    if (fd >= 0)
        close(fd);
    return verdict;
}

static const char *op_socket_raw(void) { return socket_outcome(AF_INET, SOCK_RAW, IPPROTO_ICMP); }

static const char *op_socket_packet(void)
{
    return socket_outcome(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
}

#if defined(__x86_64__)
/* The same unshare through the other x86 entry points: a filter that only
 * knows the x86_64 numbers would let these through. */
static const char *op_unshare_i386_abi(void)
{
    long r;
    long nr = 310; /* i386 __NR_unshare */
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"((long)CLONE_NEWUSER) : "memory");
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return errno_name(errno);
    }
    return "ok";
}

static const char *op_unshare_x32_abi(void)
{
    long nr = 0x40000000L /* __X32_SYSCALL_BIT */ | 272 /* x32 __NR_unshare */;
    return outcome(syscall(nr, CLONE_NEWUSER));
}
#endif

static const struct probe dangerous[] = {
    {"unshare_newuser", op_unshare_user},
    {"unshare_newns", op_unshare_mount},
    {"clone_newuser", op_clone_newuser},
    {"clone3", op_clone3},
    {"setns", op_setns},
    {"mount_tmpfs", op_mount},
    {"umount2", op_umount},
    {"pivot_root", op_pivot_root},
    {"keyctl", op_keyctl},
    {"add_key", op_add_key},
    {"request_key", op_request_key},
    {"bpf", op_bpf},
    {"perf_event_open", op_perf_event_open},
    {"userfaultfd", op_userfaultfd},
    {"io_uring_setup", op_io_uring_setup},
    {"ptrace_traceme", op_ptrace_traceme},
    {"ptrace_attach_parent", op_ptrace_attach_parent},
    {"process_vm_readv", op_process_vm_readv},
    {"open_by_handle_at", op_open_by_handle_at},
    {"kexec_load", op_kexec_load},
    {"init_module", op_init_module},
    {"personality_addr_no_randomize", op_personality},
    {"ioctl_tiocsti", op_ioctl_tiocsti},
    {"ioctl_tiocsti_high_bits", op_ioctl_tiocsti_high_bits},
    {"ioctl_tioclinux", op_ioctl_tioclinux},
    {"chroot", op_chroot},
    {"mknod_chardev", op_mknod_char},
    {"setuid_0", op_setuid_root},
    {"setgid_0", op_setgid_root},
    {"socket_raw", op_socket_raw},
    {"socket_packet", op_socket_packet},
#if defined(__x86_64__)
    {"unshare_i386_abi", op_unshare_i386_abi},
    {"unshare_x32_abi", op_unshare_x32_abi},
#endif
};

/* ---------------------------------------- operations that must still work */

static const char *op_fork(void) { return reap_clone_result(fork()); }

static const char *op_clone_plain(void)
{
    return reap_clone_result(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
}

static const char *op_personality_query(void) { return outcome(personality(0xffffffff)); }

static const char *op_personality_linux(void) { return outcome(personality(PER_LINUX)); }

static const char *op_ioctl_tiocgwinsz(void)
{
    struct winsize ws;
    if (pty_as_stdin() < 0)
        return setup_failed("pty");
    return outcome(syscall(SYS_ioctl, 0, TIOCGWINSZ, &ws));
}

static const char *op_ioctl_tiocgwinsz_high_bits(void)
{
#if ULONG_MAX > 0xFFFFFFFFUL
    struct winsize ws;
    if (pty_as_stdin() < 0)
        return setup_failed("pty");
    return outcome(syscall(SYS_ioctl, 0, 0x100000000UL | TIOCGWINSZ, &ws));
#else
    return "n/a";
#endif
}

static const char *op_mkfifo(void)
{
    const char *path = "/tmp/vgprobe-fifo";
    long r = mknod(path, S_IFIFO | 0600, 0);
    const char *verdict = outcome(r);
    if (r == 0)
        unlink(path);
    return verdict;
}

static const char *op_pipe(void)
{
    int fds[2];
    char c = 0;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return errno_name(errno);
    return outcome(write(fds[1], "x", 1) == 1 && read(fds[0], &c, 1) == 1 && c == 'x' ? 0 : -1);
}

static const char *op_socket_unix(void) { return socket_outcome(AF_UNIX, SOCK_STREAM, 0); }

static const char *op_socket_tcp(void) { return socket_outcome(AF_INET, SOCK_STREAM, 0); }

static const char *op_socket_udp(void) { return socket_outcome(AF_INET, SOCK_DGRAM, 0); }

static const char *op_memfd(void)
{
    long fd = syscall(SYS_memfd_create, "vgprobe", 0);
    const char *verdict = outcome(fd);
    if (fd >= 0)
        close((int)fd);
    return verdict;
}

static const char *op_getrandom(void)
{
    char buf[16];
    return outcome(getrandom(buf, sizeof buf, 0));
}

static const char *op_posix_spawn(void)
{
    /* glibc tries clone3 and, on ENOSYS, clone(CLONE_VM|CLONE_VFORK): the
     * path every shell-out from Python, Node or make goes through. */
    pid_t pid;
    int status;
    char *const argv[] = {(char *)"vgprobe", (char *)"true", NULL};
    int error = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ);
    if (error)
        return errno_name(error);
    if (waitpid(pid, &status, 0) < 0)
        return errno_name(errno);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "child-failed";
}

static const struct probe ordinary[] = {
    {"fork", op_fork},
    {"clone_plain", op_clone_plain},
    {"posix_spawn", op_posix_spawn},
    {"pipe", op_pipe},
    {"personality_query", op_personality_query},
    {"personality_linux", op_personality_linux},
    {"ioctl_tiocgwinsz", op_ioctl_tiocgwinsz},
    {"ioctl_tiocgwinsz_high_bits", op_ioctl_tiocgwinsz_high_bits},
    {"mkfifo", op_mkfifo},
    {"socket_unix", op_socket_unix},
    {"socket_tcp", op_socket_tcp},
    {"socket_udp", op_socket_udp},
    {"memfd_create", op_memfd},
    {"getrandom", op_getrandom},
};

static int run_probes(const struct probe *probes, size_t count)
{
    struct json o = {0};
    putchar('{');
    for (size_t i = 0; i < count; i++)
        run_isolated(&o, &probes[i]);
    puts("}");
    return 0;
}

/* ---------------------------------------------------------------- status */

/* The value of a "Key:\tvalue" line of /proc/self/status, or NULL. */
static const char *status_field(const char *status, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *line = status; line && *line;) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *v = line + klen + 1;
            v += strspn(v, " \t");
            size_t n = strcspn(v, "\n");
            n = n < size - 1 ? n : size - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
        const char *next = strchr(line, '\n');
        line = next ? next + 1 : NULL;
    }
    return NULL;
}

static void status_caps_and_seccomp(struct json *o)
{
    static char status[16384];
    char value[128];
    FILE *f = fopen("/proc/self/status", "r");
    size_t len = f ? fread(status, 1, sizeof status - 1, f) : 0;
    status[len] = '\0';
    if (f)
        fclose(f);
    static const char *const caps[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
    for (size_t i = 0; i < sizeof caps / sizeof *caps; i++)
        json_str(o, caps[i], status_field(status, caps[i], value, sizeof value));
    static const char *const numbers[] = {"NoNewPrivs", "Seccomp", "Seccomp_filters"};
    for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++) {
        if (status_field(status, numbers[i], value, sizeof value))
            json_int(o, numbers[i], atoll(value));
        else
            json_str(o, numbers[i], NULL);
    }
}

static void status_groups(struct json *o)
{
    gid_t groups[256];
    int n = getgroups(256, groups);
    json_key(o, "groups");
    putchar('[');
    for (int i = 0; i < n; i++)
        printf("%s%u", i ? ", " : "", (unsigned)groups[i]);
    putchar(']');
}

static long long limit_value(rlim_t v) { return v == RLIM_INFINITY ? -1 : (long long)v; }

static void status_rlimits(struct json *o)
{
    static const struct {
        const char *name;
        int resource;
    } limits[] = {
        {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"as", RLIMIT_AS},
        {"fsize", RLIMIT_FSIZE},   {"core", RLIMIT_CORE},
    };
    struct json inner = {0};
    json_key(o, "rlimits");
    putchar('{');
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        struct rlimit rl;
        struct json pair = {0};
        if (getrlimit(limits[i].resource, &rl) < 0)
            continue;
        json_key(&inner, limits[i].name);
        putchar('{');
        json_int(&pair, "soft", limit_value(rl.rlim_cur));
        json_int(&pair, "hard", limit_value(rl.rlim_max));
        putchar('}');
    }
    putchar('}');
}

static void status_namespaces(struct json *o)
{
    struct json inner = {0};
    json_key(o, "namespaces");
    putchar('{');
    DIR *d = opendir("/proc/self/ns");
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[300], link[128];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/ns/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        link[n > 0 ? n : 0] = '\0';
        json_str(&inner, e->d_name, n > 0 ? link : NULL);
    }
    if (d)
        closedir(d);
    putchar('}');
}

static int cmd_status(void)
{
    struct json o = {0};
    char hostname[256] = "";
    gethostname(hostname, sizeof hostname - 1);
    putchar('{');
    json_int(&o, "uid", getuid());
    json_int(&o, "gid", getgid());
    json_int(&o, "euid", geteuid());
    json_int(&o, "egid", getegid());
    status_groups(&o);
    status_caps_and_seccomp(&o);
    status_rlimits(&o);
    json_str(&o, "hostname", hostname);
    status_namespaces(&o);
    json_int(&o, "pid", getpid());
    json_int(&o, "ppid", getppid());
    puts("}");
    return 0;
}

/* ------------------------------------------------------------- abuse */

static int cmd_fork_bomb(double seconds, long max)
{
    pid_t parent = getpid();
    pid_t *children = NULL;
    long count = 0, capacity = 0;
    int error = 0;
    double deadline = now() + seconds;

    fflush(stdout);
    while (count < max && now() < deadline) {
        if (count == capacity) {
            long grown = capacity ? capacity * 2 : 1024;
            pid_t *bigger = realloc(children, (size_t)grown * sizeof *children);
            if (!bigger) {
                error = ENOMEM;
                break;
            }
            children = bigger;
            capacity = grown;
        }
        pid_t pid = fork();
        if (pid == 0) {
            /* die with the probe even if it is killed before cleaning up */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(0);
            for (;;)
                pause();
        }
        if (pid < 0) {
            error = errno;
            break;
        }
        children[count++] = pid;
    }
    for (long i = 0; i < count; i++)
        kill(children[i], SIGKILL);
    for (long i = 0; i < count; i++)
        while (waitpid(children[i], NULL, 0) < 0 && errno == EINTR)
            ;
    free(children);
    struct json o = {0};
    putchar('{');
    json_int(&o, "forked", count);
    json_str(&o, "errno", error ? errno_name(error) : NULL);
    puts("}");
    return 0;
}

/* Processes in state Z; with `parent` > 0, only that process's children. */
static long count_zombies(pid_t parent)
{
    long zombies = 0;
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* "pid (comm) S ppid ...": comm may contain spaces and parentheses */
        char *close_paren = strrchr(buf, ')');
        char state;
        int ppid;
        if (close_paren && sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 && state == 'Z' &&
            (parent <= 0 || ppid == parent))
            zombies++;
    }
    if (d)
        closedir(d);
    return zombies;
}

static int cmd_zombies(long n)
{
    long spawned = 0;
    fflush(stdout);
    for (; spawned < n; spawned++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0)
            break;
    }
    /* Wait (up to a second) until they have all exited, so that the zombies
     * exist when we exit and orphan them to the container's init. */
    long seen = 0;
    for (double deadline = now() + 1.0; now() < deadline; sleep_seconds(0.02))
        if ((seen = count_zombies(getpid())) >= spawned)
            break;
    struct json o = {0};
    putchar('{');
    json_int(&o, "spawned", spawned);
    json_int(&o, "zombies_seen", seen);
    puts("}");
    return 0;
}

static int cmd_count_zombies(void)
{
    struct json o = {0};
    putchar('{');
    json_int(&o, "zombies", count_zombies(0));
    puts("}");
    return 0;
}

static int cmd_mem_bomb(long mib)
{
    const size_t step = 1 << 20;
    for (long i = 0; i < mib; i++) {
        char *chunk = malloc(step);
        if (!chunk) {
            struct json o = {0};
            putchar('{');
            json_int(&o, "allocated_mib", i);
            json_str(&o, "errno", "ENOMEM");
            puts("}");
            return 1;
        }
        memset(chunk, 0xA5, step); /* touch every page: make it resident */
        fprintf(stderr, "mem-bomb: %ld MiB\n", i + 1);
    }
    struct json o = {0};
    putchar('{');
    json_int(&o, "allocated_mib", mib);
    puts("}");
    return 0;
}

/* ----------------------------------------------------------- filesystem */

static int cmd_write(const char *path)
{
    /* O_APPEND without O_TRUNC: probing must not destroy existing content */
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const char *verdict = outcome(fd);
    if (fd >= 0)
        close(fd);
    struct json o = {0};
    putchar('{');
    json_str(&o, "path", path);
    json_str(&o, "result", verdict);
    puts("}");
    return 0;
}

/* write(2) until done; a full filesystem shows as ENOSPC, not a short count */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ENOSPC;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (out < 0) {
        int e = errno;
        close(in);
        errno = e;
        return -1;
    }
    ssize_t n;
    int failed = 0;
    while (!failed && (n = read(in, buf, sizeof buf)) != 0)
        failed = n < 0 ? errno != EINTR : write_all(out, buf, (size_t)n) < 0;
    int e = errno;
    close(in);
    if (close(out) < 0 && !failed)
        return -1;
    if (failed) {
        errno = e;
        return -1;
    }
    /* explicit: the umask may have cleared bits of the 0755 above */
    return fchmodat(AT_FDCWD, to, 0755, 0);
}

/* execveat(dirfd, path, flags) in a child; a close-on-exec pipe carries
 * exec's errno back, and stays empty if the exec succeeded. */
static const char *exec_at(int dirfd, const char *path, int flags)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return setup_failed("pipe");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return setup_failed("fork");
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1); /* keep the copy's own JSON out of ours */
        char *const argv[] = {(char *)"vgprobe-copy", (char *)"status", NULL};
        syscall(SYS_execveat, dirfd, path, argv, environ, flags);
        int e = errno;
        ssize_t ignored = write(fds[1], &e, sizeof e);
        (void)ignored;
        _exit(127);
    }
    close(fds[1]);
    int child_errno = 0;
    ssize_t n = read(fds[0], &child_errno, sizeof child_errno);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return n == sizeof child_errno ? errno_name(child_errno) : "ok";
}

static const char *exec_copy(const char *path) { return exec_at(AT_FDCWD, path, 0); }

static int cmd_exec_tmp(void)
{
    const char *copy = "/tmp/vgprobe-copy";
    char copy_verdict[64];
    snprintf(copy_verdict, sizeof copy_verdict, "%s", outcome(copy_file("/proc/self/exe", copy)));
    const char *exec_verdict = strcmp(copy_verdict, "ok") == 0 ? exec_copy(copy) : "skipped";
    unlink(copy);
    struct json o = {0};
    putchar('{');
    json_str(&o, "copy", copy_verdict);
    json_str(&o, "exec", exec_verdict);
    puts("}");
    return 0;
}

/* ------------------------------------------- running what was written */

/* Copy this program into `out` (already open for writing). */
static int copy_self_to(int out)
{
    char buf[65536];
    int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    ssize_t n;
    int failed = 0;
    while (!failed && (n = read(in, buf, sizeof buf)) != 0)
        failed = n < 0 ? errno != EINTR : write_all(out, buf, (size_t)n) < 0;
    int e = errno;
    close(in);
    errno = e;
    return failed ? -1 : 0;
}

/* A read-only descriptor for the file behind `fd`, which is closed: the
 * kernel refuses to execute a file someone holds open for writing
 * (ETXTBSY), so a dropper reopens before it runs what it wrote. */
static int reopen_read_only(int fd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int ro = open(path, O_RDONLY);
    int e = errno;
    close(fd);
    errno = e;
    return ro;
}

/* What ld.so and dlopen do with a library: map it executable. */
static const char *map_exec(int fd)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return errno_name(errno);
    munmap(p, 4096);
    return "ok";
}

static void json_keyed(struct json *o, const char *prefix, const char *what, const char *value)
{
    char key[96];
    snprintf(key, sizeof key, "%s.%s", prefix, what);
    json_str(o, key, value);
}

/* The three ways to run an open file that has no usable path of its own:
 * execveat on the descriptor (fexecve), execve of /proc/self/fd/N, and an
 * executable mapping. `fd` is closed. */
static void json_run_routes(struct json *o, const char *prefix, int fd)
{
    char path[64];
    if (copy_self_to(fd) < 0 || (fchmod(fd, 0755) < 0 && errno != EPERM)) {
        json_keyed(o, prefix, "copy", setup_failed("copy"));
        close(fd);
        return;
    }
    if ((fd = reopen_read_only(fd)) < 0) {
        json_keyed(o, prefix, "copy", setup_failed("reopen"));
        return;
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    json_keyed(o, prefix, "execveat", exec_at(fd, "", AT_EMPTY_PATH));
    json_keyed(o, prefix, "proc_fd", exec_at(AT_FDCWD, path, 0));
    json_keyed(o, prefix, "mmap_exec", map_exec(fd));
    close(fd);
}

#ifndef MFD_EXEC
#define MFD_NOEXEC_SEAL 0x0008U
#define MFD_EXEC 0x0010U
#endif

/* memfd_create with each executability flag (MFD_EXEC and MFD_NOEXEC_SEAL
 * are Linux 6.3+), then every route to running what was written there. */
static int cmd_exec_memfd(void)
{
    static const struct {
        const char *name;
        unsigned flags;
    } kinds[] = {{"plain", 0}, {"exec", MFD_EXEC}, {"noexec_seal", MFD_NOEXEC_SEAL}};
    struct json o = {0};
    putchar('{');
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        long fd = syscall(SYS_memfd_create, "vgprobe", kinds[i].flags);
        json_keyed(&o, kinds[i].name, "create", outcome(fd));
        if (fd >= 0)
            json_run_routes(&o, kinds[i].name, (int)fd);
    }
    puts("}");
    return 0;
}

/* A program dropped into DIR: a named copy run by path and mapped
 * executable, and an unnamed O_TMPFILE copy run through its descriptor. */
static int cmd_exec_dropped(const char *dir)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s/vgprobe-dropped", dir);
    struct json o = {0};
    putchar('{');
    const char *copied = outcome(copy_file("/proc/self/exe", copy));
    json_str(&o, "named.copy", copied);
    if (strcmp(copied, "ok") == 0) {
        json_str(&o, "named.exec", exec_copy(copy));
        int fd = open(copy, O_RDONLY | O_CLOEXEC);
        json_str(&o, "named.mmap_exec", fd < 0 ? setup_failed("open") : map_exec(fd));
        if (fd >= 0)
            close(fd);
        unlink(copy);
    }
    int fd = open(dir, O_TMPFILE | O_RDWR, 0755);
    json_str(&o, "tmpfile.create", outcome(fd));
    if (fd >= 0)
        json_run_routes(&o, "tmpfile", fd);
    puts("}");
    return 0;
}

/* --------------------------------------------------------- socket families */

static const char *const family_names[] = {
    "AF_UNSPEC", "AF_UNIX", "AF_INET", "AF_AX25", "AF_IPX", "AF_APPLETALK", "AF_NETROM",
    "AF_BRIDGE", "AF_ATMPVC", "AF_X25", "AF_INET6", "AF_ROSE", "AF_DECnet", "AF_NETBEUI",
    "AF_SECURITY", "AF_KEY", "AF_NETLINK", "AF_PACKET", "AF_ASH", "AF_ECONET", "AF_ATMSVC",
    "AF_RDS", "AF_SNA", "AF_IRDA", "AF_PPPOX", "AF_WANPIPE", "AF_LLC", "AF_IB", "AF_MPLS",
    "AF_CAN", "AF_TIPC", "AF_BLUETOOTH", "AF_IUCV", "AF_RXRPC", "AF_ISDN", "AF_PHONET",
    "AF_IEEE802154", "AF_CAIF", "AF_ALG", "AF_NFC", "AF_VSOCK", "AF_KCM", "AF_QIPCRTR",
    "AF_SMC", "AF_XDP", "AF_MCTP",
};
#define FAMILIES_PROBED 48 /* two past Linux 6.18's AF_MAX (46) */

static const char *const netlink_names[] = {
    "NETLINK_ROUTE", "NETLINK_UNUSED", "NETLINK_USERSOCK", "NETLINK_FIREWALL",
    "NETLINK_SOCK_DIAG", "NETLINK_NFLOG", "NETLINK_XFRM", "NETLINK_SELINUX", "NETLINK_ISCSI",
    "NETLINK_AUDIT", "NETLINK_FIB_LOOKUP", "NETLINK_CONNECTOR", "NETLINK_NETFILTER",
    "NETLINK_IP6_FW", "NETLINK_DNRTMSG", "NETLINK_KOBJECT_UEVENT", "NETLINK_GENERIC",
    "NETLINK_17", "NETLINK_SCSITRANSPORT", "NETLINK_ECRYPTFS", "NETLINK_RDMA", "NETLINK_CRYPTO",
    "NETLINK_SMC",
};
#define NETLINK_PROTOCOLS_PROBED 32 /* MAX_LINKS */

static const char *name_of(const char *const *names, size_t count, long n, const char *prefix)
{
    static char buf[32];
    if (n >= 0 && (size_t)n < count)
        return names[n];
    snprintf(buf, sizeof buf, "%s_%ld", prefix, n);
    return buf;
}

/* Close what a successful socket call made; its verdict either way. */
static const char *socket_result(long r, const int *pair)
{
    if (r < 0)
        return errno_name(errno);
    if (pair) {
        close(pair[0]);
        close(pair[1]);
    } else {
        close((int)r);
    }
    return "ok";
}

/* "ok" if any socket type of `domain` could be created (a filter decides by
 * family), else the errno every type got, or "A/B" when types differ. */
static void json_family(struct json *o, const char *key, long domain, long protocol, int pair)
{
    static const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET, SOCK_RDM};
    char verdict[128] = "";
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        int sv[2];
        long r = pair ? syscall(SYS_socketpair, domain, types[i], protocol, sv)
                      : syscall(SYS_socket, domain, types[i], protocol);
        const char *v = socket_result(r, pair ? sv : NULL);
        if (strcmp(v, "ok") == 0) {
            snprintf(verdict, sizeof verdict, "ok");
            break;
        }
        if (!strstr(verdict, v))
            snprintf(verdict + strlen(verdict), sizeof verdict - strlen(verdict), "%s%s",
                     *verdict ? "/" : "", v);
    }
    json_str(o, key, verdict);
}

#if defined(__x86_64__)
/* The i386 entry points: the direct socket calls (Linux 4.3+) and the old
 * socketcall multiplexer, whose arguments lie in memory the filter cannot
 * read. Pointers must fit in 32 bits, hence MAP_32BIT. */
#define I386_SOCKETCALL 102
#define I386_SOCKET 359
#define I386_SOCKETPAIR 360

static long int80(long nr, long a, long b, long c, long d)
{
    long r;
    __asm__ volatile("int $0x80"
                     : "=a"(r)
                     : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d)
                     : "memory");
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static void json_i386_sockets(struct json *o)
{
    uint32_t *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) {
        json_str(o, "i386", setup_failed("mmap"));
        return;
    }
    static const int families[] = {AF_UNIX, AF_INET, AF_VSOCK, AF_ALG};
    char key[64];
    for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
        const char *name = family_names[families[i]];
        int *sv = (int *)(low + 8);
        snprintf(key, sizeof key, "i386.socket.%s", name);
        json_str(o, key, socket_result(int80(I386_SOCKET, families[i], SOCK_STREAM, 0, 0), NULL));
        snprintf(key, sizeof key, "i386.socketpair.%s", name);
        json_str(o, key, socket_result(int80(I386_SOCKETPAIR, families[i], SOCK_STREAM, 0,
                                             (long)(uintptr_t)sv), sv));
        low[0] = (uint32_t)families[i], low[1] = SOCK_STREAM, low[2] = 0;
        snprintf(key, sizeof key, "i386.socketcall.socket.%s", name);
        json_str(o, key, socket_result(int80(I386_SOCKETCALL, 1 /* SYS_SOCKET */, (long)(uintptr_t)low, 0, 0), NULL));
        low[3] = (uint32_t)(uintptr_t)sv;
        snprintf(key, sizeof key, "i386.socketcall.socketpair.%s", name);
        json_str(o, key, socket_result(int80(I386_SOCKETCALL, 8 /* SYS_SOCKETPAIR */, (long)(uintptr_t)low, 0, 0), sv));
    }
    munmap(low, 4096);
}
#endif

/* socket and socketpair for every address family, socket for every netlink
 * protocol, a family with bits set above the 32 the kernel reads, and (on
 * x86_64) the i386 entry points. */
static int cmd_socket_families(void)
{
    struct json o = {0};
    char key[64];
    size_t named = sizeof family_names / sizeof *family_names;
    putchar('{');
    for (long f = 0; f < FAMILIES_PROBED; f++) {
        snprintf(key, sizeof key, "socket.%s", name_of(family_names, named, f, "AF"));
        json_family(&o, key, f, 0, 0);
        snprintf(key, sizeof key, "socketpair.%s", name_of(family_names, named, f, "AF"));
        json_family(&o, key, f, 0, 1);
    }
    for (long p = 0; p < NETLINK_PROTOCOLS_PROBED; p++) {
        snprintf(key, sizeof key, "netlink.%s",
                 name_of(netlink_names, sizeof netlink_names / sizeof *netlink_names, p, "NETLINK"));
        json_family(&o, key, AF_NETLINK, p, 0);
    }
    json_family(&o, "socket.AF_VSOCK+high_bits", (1L << 32) | AF_VSOCK, 0, 0);
    json_family(&o, "socket.AF_UNIX+high_bits", (1L << 32) | AF_UNIX, 0, 0);
    json_family(&o, "netlink.NETLINK_SOCK_DIAG+high_bits", AF_NETLINK, (1L << 32) | 4, 0);
#if defined(__x86_64__)
    json_i386_sockets(&o);
#endif
    puts("}");
    return 0;
}

/* ------------------------------------------------------------------ setxattr */

/* Set an extended attribute (the overlay workspace tests forge overlayfs's
 * own attributes from inside); prints "setxattr=ok" or the errno's name. */
static int cmd_setxattr(const char *path, const char *name, const char *value)
{
    if (setxattr(path, name, value, strlen(value), 0) == 0) {
        puts("setxattr=ok");
        return 0;
    }
    printf("setxattr=%s\n", strerror(errno));
    return 1;
}

/* ------------------------------------------------------------- connect-flood */

/* One proxy request for a destination the allowlist does not name, and the
 * status code of the answer (0 if there was none). */
static int flood_once(const struct sockaddr_in *proxy, long i, long hosts)
{
    char request[160], reply[512];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = 0;
    ssize_t got = 0, r;
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)proxy, sizeof *proxy) < 0) {
        close(fd);
        return -1;
    }
    int len = snprintf(request, sizeof request, "CONNECT flood-%ld.invalid:%ld HTTP/1.1\r\n\r\n",
                       i % hosts, 1000 + i % hosts);
    if (write(fd, request, (size_t)len) == len)
        while (got < (ssize_t)sizeof reply - 1 && (r = read(fd, reply + got, sizeof reply - 1 - (size_t)got)) > 0)
            got += r;
    reply[got] = '\0';
    if (strncmp(reply, "HTTP/1.1 ", 9) == 0)
        status = atoi(reply + 9);
    close(fd);
    return status;
}

/* N proxy requests to 127.0.0.1:PORT from WORKERS processes in parallel, for
 * destinations spread over HOSTS host names (flood-K.invalid:1000+K); prints
 * how many answers were 403, something else, or no answer at all. */
static int cmd_connect_flood(long port, long n, long workers, long hosts)
{
    struct sockaddr_in proxy = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fds[2];
    long forbidden = 0, other = 0, failed = 0;
    inet_pton(AF_INET, "127.0.0.1", &proxy.sin_addr);
    if (workers < 1 || hosts < 1 || pipe(fds) < 0)
        return 2;
    for (long w = 0; w < workers; w++) {
        if (fork() == 0) {
            long counts[3] = {0, 0, 0};
            for (long i = w; i < n; i += workers) {
                int status = flood_once(&proxy, i, hosts);
                counts[status == 403 ? 0 : status > 0 ? 1 : 2]++;
            }
            if (write(fds[1], counts, sizeof counts) != sizeof counts)
                _exit(1);
            _exit(0);
        }
    }
    close(fds[1]);
    long counts[3];
    while (read(fds[0], counts, sizeof counts) == sizeof counts)
        forbidden += counts[0], other += counts[1], failed += counts[2];
    while (wait(NULL) > 0)
        ;
    struct json o = {0};
    putchar('{');
    json_int(&o, "attempts", n);
    json_int(&o, "forbidden", forbidden);
    json_int(&o, "other", other);
    json_int(&o, "failed", failed);
    puts("}");
    return 0;
}

/* Suspend output on the terminal that is standard output (tcflow TCOOFF: what ^S does), say so on
 * standard error first, then wait for ever: any process that writes to that terminal now blocks. */
static int cmd_tty_off(void)
{
    fputs("tty-off\n", stderr);
    if (tcflow(STDOUT_FILENO, TCOOFF) != 0) {
        perror("tcflow");
        return 1;
    }
    for (;;)
        pause();
}

/* ------------------------------------------------------------------ main */

static int usage(void)
{
    fputs("usage: vgprobe syscalls | allowed | status | fork-bomb SECONDS [MAX] | zombies N |\n"
          "               count-zombies | mem-bomb MIB | write PATH | exec-tmp |\n"
          "               exec-memfd | exec-dropped DIR | socket-families |\n"
          "               setxattr PATH NAME VALUE | connect-flood PORT N WORKERS HOSTS | tty-off\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    long n = 0, max = 100000, workers = 0, hosts = 0;
    const char *cmd = argc > 1 ? argv[1] : "";

    if (strcmp(cmd, "syscalls") == 0 && argc == 2)
        return run_probes(dangerous, sizeof dangerous / sizeof *dangerous);
    if (strcmp(cmd, "allowed") == 0 && argc == 2)
        return run_probes(ordinary, sizeof ordinary / sizeof *ordinary);
    if (strcmp(cmd, "status") == 0 && argc == 2)
        return cmd_status();
    if (strcmp(cmd, "fork-bomb") == 0 && (argc == 3 || argc == 4) && parse_count(argv[2], &n) &&
        (argc == 3 || parse_count(argv[3], &max)))
        return cmd_fork_bomb((double)n, max);
    if (strcmp(cmd, "zombies") == 0 && argc == 3 && parse_count(argv[2], &n))
        return cmd_zombies(n);
    if (strcmp(cmd, "count-zombies") == 0 && argc == 2)
        return cmd_count_zombies();
    if (strcmp(cmd, "mem-bomb") == 0 && argc == 3 && parse_count(argv[2], &n))
        return cmd_mem_bomb(n);
    if (strcmp(cmd, "write") == 0 && argc == 3)
        return cmd_write(argv[2]);
    if (strcmp(cmd, "exec-tmp") == 0 && argc == 2)
        return cmd_exec_tmp();
    if (strcmp(cmd, "exec-memfd") == 0 && argc == 2)
        return cmd_exec_memfd();
    if (strcmp(cmd, "exec-dropped") == 0 && argc == 3)
        return cmd_exec_dropped(argv[2]);
    if (strcmp(cmd, "socket-families") == 0 && argc == 2)
        return cmd_socket_families();
    if (strcmp(cmd, "setxattr") == 0 && argc == 5)
        return cmd_setxattr(argv[2], argv[3], argv[4]);
    if (strcmp(cmd, "connect-flood") == 0 && argc == 6 && parse_count(argv[2], &n) && parse_count(argv[3], &max) &&
        parse_count(argv[4], &workers) && parse_count(argv[5], &hosts))
        return cmd_connect_flood(n, max, workers, hosts);
    if (strcmp(cmd, "tty-off") == 0 && argc == 2)
        return cmd_tty_off();
    if (strcmp(cmd, "true") == 0) /* the program `allowed` posix_spawns */
        return 0;
    return usage();
}
