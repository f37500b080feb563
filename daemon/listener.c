/*
 * listener.c - the listening socket: created from --socket-path, inherited
 * with --fd, or passed by systemd socket activation; and the accept loop that
 * lets exactly one front end in at a time.
 * Runs in: the parent. Trusts nothing about who connects: the peer's
 * credentials are logged, and a second connection is closed at once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "bulkheadd.h"
#include "log.h"
#include "util.h"

#define LISTENER_BACKLOG    8
#define SD_LISTEN_FDS_START 3

static struct event *listener_ev;
static int listener_fd = -1;

/* A stale socket file from a previous run is replaced; anything else is not ours. */
static int listener_remove_stale(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_warnx("%s exists and is not a socket; not replacing it", path);
		return -EEXIST;
	}
	if (unlink(path) < 0) {
		log_warn("cannot remove the stale socket %s", path);
		return -errno;
	}
	return 0;
}

static int listener_set_group(const char *path, const char *group)
{
	struct group *gr;
	uint64_t gid;

	errno = 0;
	gr = getgrnam(group);
	if (gr)
		gid = gr->gr_gid;
	else if (bh_parse_u64(group, 0, (gid_t)-2, &gid) < 0) {
		log_warnx("unknown socket group '%s'", group);
		return -EINVAL;
	}
	if (chown(path, (uid_t)-1, (gid_t)gid) < 0) {
		log_warn("cannot give %s to group %s", path, group);
		return -errno;
	}
	if (chmod(path, 0660) < 0) {
		log_warn("cannot make %s group-accessible", path);
		return -errno;
	}
	return 0;
}

static int listener_create(const struct parent_conf *conf)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(conf->pc_socket_path);
	mode_t old;
	int fd, r;

	if (len == 0 || len >= sizeof(sa.sun_path)) {
		log_warnx("socket path %s is empty or longer than %zu bytes", conf->pc_socket_path,
			  sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, conf->pc_socket_path, len);
	if (listener_remove_stale(conf->pc_socket_path) < 0)
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_warn("socket");
		return -errno;
	}
	/* The socket must never exist with a wider mode, not even briefly. */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = -errno;
		log_warn("cannot bind %s", conf->pc_socket_path);
		close(fd);
		return r;
	}
	if (listen(fd, LISTENER_BACKLOG) < 0) {
		r = -errno;
		log_warn("cannot listen on %s", conf->pc_socket_path);
		unlink(conf->pc_socket_path);
		close(fd);
		return r;
	}
	if (conf->pc_socket_group &&
	    listener_set_group(conf->pc_socket_path, conf->pc_socket_group) < 0) {
		unlink(conf->pc_socket_path);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

/* An inherited descriptor must be a listening UNIX stream socket. */
static int listener_adopt(int fd, const char *origin)
{
	struct sockaddr_un sa;
	socklen_t sl = sizeof(sa);
	int v = 0;
	socklen_t vl = sizeof(v);
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		log_warnx("%s descriptor %d is not a socket", origin, fd);
		return -ENOTSOCK;
	}
	if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 || sa.sun_family != AF_UNIX) {
		log_warnx("%s descriptor %d is not a UNIX socket", origin, fd);
		return -EINVAL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) < 0 || v != SOCK_STREAM) {
		log_warnx("%s descriptor %d is not a stream socket", origin, fd);
		return -EINVAL;
	}
	vl = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0 || !v) {
		log_warnx("%s descriptor %d is not listening", origin, fd);
		return -EINVAL;
	}
	if (bh_set_cloexec(fd, 1) < 0 || bh_set_nonblock(fd, 1) < 0) {
		log_warn("%s descriptor %d", origin, fd);
		return -EINVAL;
	}
	return fd;
}

static int listener_systemd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	uint64_t p, n;

	if (!pid || !fds) {
		log_warnx("no socket: give --socket-path or --fd, or start under systemd "
			  "socket activation");
		return -EINVAL;
	}
	if (bh_parse_u64(pid, 1, INT32_MAX, &p) < 0 || (pid_t)p != getpid()) {
		log_warnx("LISTEN_PID is not this process; no socket to use");
		return -EINVAL;
	}
	if (bh_parse_u64(fds, 1, 64, &n) < 0) {
		log_warnx("LISTEN_FDS '%s' passes no socket", fds);
		return -EINVAL;
	}
	if (n > 1)
		log_warnx("systemd passed %u sockets; using the first", (unsigned)n);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return listener_adopt(SD_LISTEN_FDS_START, "systemd");
}

/* The listening socket (-errno after logging why). *created: we made the path. */
int listener_open(const struct parent_conf *conf, int *created)
{
	int fd;

	*created = 0;
	if (conf->pc_socket_path) {
		fd = listener_create(conf);
		if (fd >= 0)
			*created = 1;
		return fd;
	}
	if (conf->pc_fd >= 0)
		return listener_adopt(conf->pc_fd, "--fd");
	return listener_systemd();
}

static void listener_log_peer(int fd)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		log_info("front end connected (credentials unknown: %s)", strerror(errno));
	else
		log_info("front end connected: pid %d, uid %u, gid %u", (int)uc.pid,
			 (unsigned)uc.uid, (unsigned)uc.gid);
}

static void listener_accept(evutil_socket_t lfd, short ev, void *arg)
{
	struct timeval tv = {.tv_sec = PARENT_FRONTEND_IO_TIMEOUT_S};
	int fd;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept");
		return;
	}
	if (vu_server_busy()) {
		struct ucred uc;
		socklen_t len = sizeof(uc);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0)
			log_warnx("refusing a second front end (pid %d, uid %u): one is already "
				  "connected",
				  (int)uc.pid, (unsigned)uc.uid);
		else
			log_warnx("refusing a second front end: one is already connected");
		close(fd);
		return;
	}
	listener_log_peer(fd);
	/* A front end that stops in the middle of a message must not wedge us. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		log_warn("setsockopt on the front-end connection");
		close(fd);
		return;
	}
	vu_server_start(fd);
}

int listener_start(struct event_base *base, int fd)
{
	listener_fd = fd;
	listener_ev = event_new(base, fd, EV_READ | EV_PERSIST, listener_accept, NULL);
	if (!listener_ev || event_add(listener_ev, NULL) < 0) {
		log_warnx("cannot watch the listening socket");
		return -ENOMEM;
	}
	return 0;
}

void listener_stop(void)
{
	if (listener_ev) {
		event_free(listener_ev);
		listener_ev = NULL;
	}
	if (listener_fd >= 0) {
		close(listener_fd);
		listener_fd = -1;
	}
}

/* Remove the socket file, but only one this process created (conf != NULL). */
void listener_unlink(const struct parent_conf *conf)
{
	if (conf && conf->pc_socket_path && unlink(conf->pc_socket_path) < 0 && errno != ENOENT)
		log_warn("cannot remove %s", conf->pc_socket_path);
}
