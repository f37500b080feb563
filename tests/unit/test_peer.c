/*
 * test_peer.c - worker-to-worker descriptor sharing (peer.c) and the
 * per-worker descriptor table on top of it (fdtable.c): same open file
 * description across processes, errors, hostile peer messages, release,
 * eviction under references, session reset.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdtable.h"
#include "ipc.h"
#include "node_table.h"
#include "peer.h"
#include "util.h"

/* A provider that hands out one file for id 42 and records releases. */
struct fake {
	int file;
	atomic_ullong released_node;
	atomic_ullong released_fh;
	atomic_ullong node_id_sum; /* of every node released */
	atomic_uint node_releases;
};

static int fake_node_fd(void *ctx, uint64_t id)
{
	struct fake *f = ctx;

	if (id != 42)
		return -ENOENT;
	return fcntl(f->file, F_DUPFD_CLOEXEC, 0);
}

static int fake_fh_fd(void *ctx, uint64_t id)
{
	return -EBADF;
}

static void fake_release_node(void *ctx, uint64_t id)
{
	struct fake *f = ctx;

	f->node_id_sum += id;
	f->node_releases++;
	f->released_node = id;
}

static void fake_release_fh(void *ctx, uint64_t id)
{
	((struct fake *)ctx)->released_fh = id;
}

static int memfile(const char *text)
{
	int fd = memfd_create("bh-test", MFD_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static const struct peer_provider fdt_prov_template = {
    .node_fd = fdt_provide_node_fd,
    .fh_fd = fdt_provide_fh_fd,
    .release_node = fdt_release_node,
    .release_fh = fdt_release_fh,
};

static struct peer *fdt_peer(struct fdt *t, uint32_t self)
{
	struct peer_provider prov = fdt_prov_template;
	struct peer *p;

	prov.ctx = t;
	p = peer_create(self, &prov);
	cr_assert_not_null(p);
	fdt_set_peer(t, p);
	return p;
}

/* Is fd open, and is it the same inode as ref? */
static bool same_file(int fd, int ref)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0 || fstat(ref, &b) < 0)
		return false;
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static bool wait_for(bool (*cond)(void *), void *arg)
{
	uint64_t end = bh_now_ns() + 3000000000ull;

	while (bh_now_ns() < end) {
		if (cond(arg))
			return true;
		usleep(2000);
	}
	return false;
}

struct stale_arg {
	struct nt_table *nt;
	uint64_t id;
};

static bool node_is_gone(void *arg)
{
	struct stale_arg *s = arg;
	struct nt_node n;

	return nt_node_get(s->nt, s->id, &n) == -ESTALE;
}

static bool fake_saw_1000_releases(void *arg)
{
	return ((struct fake *)arg)->node_releases == 1000;
}

static bool fake_saw_release(void *arg)
{
	return ((struct fake *)arg)->released_node == 7;
}

Test(peer, fetched_descriptor_shares_the_owners_open_file_description)
{
	int memfd = nt_create(), ch[2], ctl[2], res[2], st, fd, root;
	struct nt_table *nt;
	struct nt_node n, other;
	bool created;
	char buf[8] = "";
	off_t off;
	pid_t pid;
	char c;

	cr_assert_geq(memfd, 0);
	nt = nt_map(memfd);
	cr_assert_not_null(nt);
	cr_assert_eq(nt_node_ref(nt, 1, 100, S_IFREG, 1, &n, &created), 0);
	cr_assert_eq(nt_node_ref(nt, 1, 101, S_IFREG, 1, &other, &created), 0);
	cr_assert_eq(ipc_socketpair(ch), 0);
	cr_assert_eq(pipe(ctl), 0);
	cr_assert_eq(pipe(res), 0);
	root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(root, 0);

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* Worker 1 owns node n (but has no descriptor for 'other'). */
		int file = memfile("hello world");
		struct fdt *a = fdt_create(nt, 1, root, 8);
		struct peer_provider prov = fdt_prov_template;
		struct peer *p;

		prov.ctx = a;
		if (!a || fdt_node_install(a, n.n_id, file) < 0)
			_exit(2);
		if (!(p = peer_create(1, &prov)) || peer_add(p, 2, IPC_PEER_SERVER, ch[1]) < 0)
			_exit(3);
		if (write(res[1], "r", 1) != 1)
			_exit(4);
		while (read(ctl[0], &c, 1) == 1 && c == 'o') {
			off = lseek(file, 0, SEEK_CUR);
			if (write(res[1], &off, sizeof(off)) != sizeof(off))
				_exit(5);
		}
		peer_destroy(p);
		fdt_destroy(a);
		_exit(0);
	}
	close(ch[1]);
	struct fdt *b = fdt_create(nt, 2, root, 8);
	struct peer *pb = fdt_peer(b, 2);
	cr_assert_eq(peer_add(pb, 1, IPC_PEER_CLIENT, ch[0]), 0);
	cr_assert_eq(read(res[0], &c, 1), 1);

	cr_assert_eq(fdt_node_get(b, n.n_id, &fd), 0);
	cr_assert_eq(lseek(fd, 6, SEEK_SET), 6);
	cr_assert_eq(write(ctl[1], "o", 1), 1);
	cr_assert_eq(read(res[0], &off, sizeof(off)), sizeof(off));
	cr_assert_eq(off, 6, "the owner sees our seek");
	cr_assert_eq(read(fd, buf, 5), 5);
	cr_assert_str_eq(buf, "world");
	fdt_put(b, fd);

	/* The owner has nothing for this one; ids it does not know fail. */
	cr_assert_eq(fdt_node_get(b, other.n_id, &fd), -EIO);
	cr_assert_eq(peer_get_node_fd(pb, 1, 12345), -ESTALE);

	/* Release reaches the owner, which closes and frees the slot. */
	cr_assert_eq(peer_release_node(pb, 1, n.n_id), 0);
	struct stale_arg sa = {nt, n.n_id};
	cr_assert(wait_for(node_is_gone, &sa));

	cr_assert_eq(write(ctl[1], "q", 1), 1);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "owner status %#x", st);
	/* The owner is gone: asking it fails cleanly. */
	cr_assert_eq(peer_get_node_fd(pb, 1, 42), -EHOSTUNREACH);
	peer_destroy(pb);
	fdt_destroy(b);
	nt_unmap(nt);
	close(root);
	close(memfd);
}

Test(peer, unknown_owner_or_missing_channel_is_unreachable)
{
	struct fake f = {.file = -1};
	struct peer_provider prov = {&f, fake_node_fd, fake_fh_fd, fake_release_node,
				     fake_release_fh};
	struct peer *p = peer_create(2, &prov);
	int sv[2];

	cr_assert_not_null(p);
	cr_assert_eq(peer_get_node_fd(p, 1, 42), -EHOSTUNREACH);
	cr_assert_eq(peer_get_fh_fd(p, BH_MAX_QUEUES, 42), -EHOSTUNREACH);
	cr_assert_eq(peer_get_node_fd(p, 2, 42), -EHOSTUNREACH, "not ourselves");
	cr_assert_eq(peer_release_node(p, 7, 42), -EHOSTUNREACH);
	cr_assert_eq(ipc_socketpair(sv), 0);
	cr_assert_eq(peer_add(p, 2, IPC_PEER_CLIENT, sv[0]), -EINVAL);
	cr_assert_eq(fcntl(sv[0], F_GETFD), -1, "a refused channel is closed");
	cr_assert_eq(peer_add(p, 1, 9, sv[1]), -EINVAL);
	peer_destroy(p);
}

/* Two peers in this process: 'srv' (worker 1) serves 'cli' (worker 2). */
struct pair {
	struct fake f;
	struct peer *srv;
	struct peer *cli;
};

static void pair_init(struct pair *pp)
{
	struct peer_provider prov = {&pp->f, fake_node_fd, fake_fh_fd, fake_release_node,
				     fake_release_fh};
	int sv[2];

	memset(pp, 0, sizeof(*pp));
	pp->f.file = memfile("0123456789");
	prov.ctx = &pp->f;
	pp->srv = peer_create(1, &prov);
	pp->cli = peer_create(2, &prov);
	cr_assert(pp->srv && pp->cli);
	cr_assert_eq(ipc_socketpair(sv), 0);
	cr_assert_eq(peer_add(pp->cli, 1, IPC_PEER_CLIENT, sv[0]), 0);
	cr_assert_eq(peer_add(pp->srv, 2, IPC_PEER_SERVER, sv[1]), 0);
}

static void pair_fini(struct pair *pp)
{
	peer_destroy(pp->cli);
	peer_destroy(pp->srv);
	close(pp->f.file);
}

static bool closed_by_server(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char b[64];

	if (poll(&pfd, 1, 3000) != 1)
		return false;
	return recv(fd, b, sizeof(b), MSG_DONTWAIT) == 0;
}

Test(peer, garbage_on_a_server_channel_closes_only_that_channel)
{
	struct ipc_peer_req req = {.pq_id = 42, .pq_cookie = 1};
	struct ipc_hello hello = {0};
	struct pair pp;
	int sv[2], fd;
	uint32_t other = 3;

	pair_init(&pp);
	/* Each kind of bad message, on a fresh channel from "worker 3". */
	for (int kind = 0; kind < 8; kind++) {
		uint64_t ids[IPC_PEER_RELEASE_MAX + 1] = {0};
		cr_assert_eq(ipc_socketpair(sv), 0);
		cr_assert_eq(peer_add(pp.srv, other, IPC_PEER_SERVER, sv[1]), 0);
		switch (kind) {
		case 0: /* shorter than a header */
			cr_assert_eq(send(sv[0], "xyz", 3, 0), 3);
			break;
		case 1: /* right type, wrong payload size */
			cr_assert_eq(ipc_send(sv[0], IPC_PEER_GET_NODE_FD, 1, &req, 4, NULL, 0), 0);
			break;
		case 2: /* a descriptor where none belongs */
			cr_assert_eq(ipc_send(sv[0], IPC_PEER_GET_NODE_FD, 1, &req, sizeof(req),
					      &pp.f.file, 1),
				     0);
			break;
		case 5: /* a release that is not a whole number of ids */
			cr_assert_eq(ipc_send(sv[0], IPC_PEER_RELEASE_NODE, 1, ids, 12, NULL, 0), 0);
			break;
		case 6: /* an empty release */
			cr_assert_eq(ipc_send(sv[0], IPC_PEER_RELEASE_FH, 1, ids, 0, NULL, 0), 0);
			break;
		case 7: /* more ids than a release may carry */
			cr_assert_eq(ipc_send(sv[0], IPC_PEER_RELEASE_NODE, 1, ids, sizeof(ids),
					      NULL, 0),
				     0);
			break;
		case 3: /* a parent message on a peer channel */
			cr_assert_eq(ipc_send(sv[0], IPC_HELLO, 1, &hello, sizeof(hello), NULL, 0),
				     0);
			break;
		default: /* a reply sent as a request */
			cr_assert_eq(ipc_send(sv[0], IPC_PEER_FD, 1, &req, sizeof(req), NULL, 0),
				     0);
			break;
		}
		cr_assert(closed_by_server(sv[0]), "bad message kind %d", kind);
		close(sv[0]);
	}
	/* The server still answers its good channel. */
	fd = peer_get_node_fd(pp.cli, 1, 42);
	cr_assert_geq(fd, 0);
	cr_assert(same_file(fd, pp.f.file));
	close(fd);
	pair_fini(&pp);
}

Test(peer, provider_errors_and_releases_cross_the_channel)
{
	struct pair pp;

	pair_init(&pp);
	cr_assert_eq(peer_get_node_fd(pp.cli, 1, 41), -ENOENT);
	cr_assert_eq(peer_get_fh_fd(pp.cli, 1, 41), -EBADF);
	cr_assert_eq(peer_release_node(pp.cli, 1, 7), 0);
	cr_assert(wait_for(fake_saw_release, &pp.f));
	cr_assert_eq(peer_release_fh(pp.cli, 1, 9), 0);
	/* Requests are ordered on the channel: once this answers, the
	 * release before it has been handled. */
	int fd = peer_get_node_fd(pp.cli, 1, 42);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pp.f.released_fh, 9);
	close(fd);
	pair_fini(&pp);
}

/* A worker whose back end has not said what it lends (or lends nothing)
 * answers every request with EBADF and ignores releases; once the back end
 * sets its provider, that one answers. */
Test(peer, without_a_provider_nothing_is_lent_until_one_is_set)
{
	struct peer_provider prov = {NULL, fake_node_fd, fake_fh_fd, fake_release_node,
				     fake_release_fh};
	struct fake f = {0};
	struct peer *srv, *cli;
	int sv[2], fd;

	f.file = memfile("0123456789");
	prov.ctx = &f;
	cr_assert_not_null(srv = peer_create(1, NULL));
	cr_assert_not_null(cli = peer_create(2, &prov));
	cr_assert_eq(ipc_socketpair(sv), 0);
	cr_assert_eq(peer_add(cli, 1, IPC_PEER_CLIENT, sv[0]), 0);
	cr_assert_eq(peer_add(srv, 2, IPC_PEER_SERVER, sv[1]), 0);
	cr_expect_eq(peer_get_node_fd(cli, 1, 42), -EBADF);
	cr_expect_eq(peer_get_fh_fd(cli, 1, 42), -EBADF);
	cr_assert_eq(peer_release_node(cli, 1, 7), 0);
	cr_expect_eq(peer_get_node_fd(cli, 1, 41), -EBADF, "the channel broke on a release");
	cr_expect_eq(f.released_node, 0, "a release reached a provider that was never set");
	peer_destroy(cli);
	peer_destroy(srv);

	/* The same worker with the provider set before its channels. */
	cr_assert_not_null(srv = peer_create(1, NULL));
	peer_set_provider(srv, &prov);
	cr_assert_not_null(cli = peer_create(2, &prov));
	cr_assert_eq(ipc_socketpair(sv), 0);
	cr_assert_eq(peer_add(cli, 1, IPC_PEER_CLIENT, sv[0]), 0);
	cr_assert_eq(peer_add(srv, 2, IPC_PEER_SERVER, sv[1]), 0);
	fd = peer_get_node_fd(cli, 1, 42);
	cr_expect_geq(fd, 0);
	if (fd >= 0)
		close(fd);
	peer_destroy(cli);
	peer_destroy(srv);
	close(f.file);
}

/* A thousand releases (a guest's BATCH_FORGET) cross in two messages of
 * IPC_PEER_RELEASE_MAX ids, each id exactly once. */
Test(peer, batched_releases_reach_the_owner_once_each)
{
	uint64_t ids[1000], want = 0;
	struct pair pp;

	pair_init(&pp);
	for (uint64_t i = 0; i < 1000; i++) {
		ids[i] = 1000 + i;
		want += ids[i];
	}
	cr_assert_eq(peer_release_nodes(pp.cli, 1, ids, 1000), 0);
	cr_assert(wait_for(fake_saw_1000_releases, &pp.f));
	cr_assert_eq(pp.f.node_id_sum, want);
	cr_assert_eq(pp.f.released_node, 1999);
	pair_fini(&pp);
}

/* A fake owner that first answers with a stale cookie, then correctly. */
static void *stale_then_right(void *arg)
{
	int fd = *(int *)arg, file = memfile("x");
	struct ipc_peer_reply rep = {0};
	struct ipc_peer_req req;
	struct ipc_msg *m = malloc(sizeof(*m));

	if (ipc_recv(fd, m) < 0 || m->im_hdr.ih_type != IPC_PEER_GET_NODE_FD)
		return NULL;
	memcpy(&req, m->im_data, sizeof(req));
	rep.pr_cookie = req.pq_cookie + 100;
	ipc_send(fd, IPC_PEER_FD, 0, &rep, sizeof(rep), &file, 1);
	rep.pr_cookie = req.pq_cookie;
	rep.pr_error = -EACCES;
	ipc_send(fd, IPC_PEER_FD, 0, &rep, sizeof(rep), NULL, 0);
	close(file);
	free(m);
	return NULL;
}

Test(peer, reply_with_a_stale_cookie_is_skipped)
{
	struct fake f = {.file = -1};
	struct peer_provider prov = {&f, fake_node_fd, fake_fh_fd, fake_release_node,
				     fake_release_fh};
	struct peer *p = peer_create(2, &prov);
	pthread_t th;
	int sv[2];

	cr_assert_eq(ipc_socketpair(sv), 0);
	cr_assert_eq(peer_add(p, 1, IPC_PEER_CLIENT, sv[0]), 0);
	cr_assert_eq(pthread_create(&th, NULL, stale_then_right, &sv[1]), 0);
	cr_assert_eq(peer_get_node_fd(p, 1, 42), -EACCES);
	pthread_join(th, NULL);
	close(sv[1]);
	peer_destroy(p);
}

/* A fake owner whose reply carries both an error and a descriptor. */
static void *error_with_fd(void *arg)
{
	int fd = *(int *)arg, file = memfile("x");
	struct ipc_peer_reply rep = {0};
	struct ipc_peer_req req;
	struct ipc_msg *m = malloc(sizeof(*m));

	if (ipc_recv(fd, m) == 0 && ipc_check(m, sizeof(req), 0) == 0) {
		memcpy(&req, m->im_data, sizeof(req));
		rep.pr_cookie = req.pq_cookie;
		rep.pr_error = -EACCES;
		ipc_send(fd, IPC_PEER_FD, 0, &rep, sizeof(rep), &file, 1);
	}
	close(file);
	free(m);
	return NULL;
}

Test(peer, inconsistent_reply_drops_the_channel)
{
	struct fake f = {.file = -1};
	struct peer_provider prov = {&f, fake_node_fd, fake_fh_fd, fake_release_node,
				     fake_release_fh};
	struct peer *p = peer_create(2, &prov);
	pthread_t th;
	int sv[2];

	cr_assert_eq(ipc_socketpair(sv), 0);
	cr_assert_eq(peer_add(p, 1, IPC_PEER_CLIENT, sv[0]), 0);
	cr_assert_eq(pthread_create(&th, NULL, error_with_fd, &sv[1]), 0);
	cr_assert_eq(peer_get_node_fd(p, 1, 42), -EHOSTUNREACH);
	pthread_join(th, NULL);
	cr_assert(closed_by_server(sv[1]), "our end of the channel is closed");
	cr_assert_eq(peer_get_node_fd(p, 1, 42), -EHOSTUNREACH);
	close(sv[1]);
	peer_destroy(p);
}

/* Two fdtables in one process: A (worker 1) owns, B (worker 2) borrows. */
struct two {
	int memfd, root;
	struct nt_table *nt;
	struct fdt *a, *b;
	struct peer *pa, *pb;
};

static void two_init(struct two *w, unsigned cache_max)
{
	int sv[2];

	w->memfd = nt_create();
	cr_assert_geq(w->memfd, 0);
	w->nt = nt_map(w->memfd);
	cr_assert_not_null(w->nt);
	w->root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	w->a = fdt_create(w->nt, 1, w->root, 8);
	w->b = fdt_create(w->nt, 2, w->root, cache_max);
	cr_assert(w->a && w->b);
	w->pa = fdt_peer(w->a, 1);
	w->pb = fdt_peer(w->b, 2);
	cr_assert_eq(ipc_socketpair(sv), 0);
	cr_assert_eq(peer_add(w->pb, 1, IPC_PEER_CLIENT, sv[0]), 0);
	cr_assert_eq(peer_add(w->pa, 2, IPC_PEER_SERVER, sv[1]), 0);
}

static void two_fini(struct two *w)
{
	peer_destroy(w->pa);
	peer_destroy(w->pb);
	fdt_destroy(w->a);
	fdt_destroy(w->b);
	nt_unmap(w->nt);
	close(w->root);
	close(w->memfd);
}

/* A creates a node for a fresh file and installs it; *file = A's fd. */
static uint64_t owned_node(struct two *w, uint64_t ino, int *file)
{
	struct nt_node n;
	bool created;

	*file = memfile("data");
	cr_assert_eq(nt_node_ref(w->nt, 1, ino, S_IFREG, 1, &n, &created), 0);
	cr_assert(created);
	cr_assert_eq(fdt_node_install(w->a, n.n_id, *file), 0);
	return n.n_id;
}

Test(fdtable, eviction_never_closes_a_descriptor_still_referenced)
{
	struct two w;
	int f1, f2, fd1, fd2;
	uint64_t n1, n2;

	two_init(&w, 1);
	n1 = owned_node(&w, 10, &f1);
	n2 = owned_node(&w, 11, &f2);
	cr_assert_eq(fdt_node_get(w.b, n1, &fd1), 0);
	cr_assert(same_file(fd1, f1));
	cr_assert_eq(fdt_node_get(w.b, n2, &fd2), 0); /* evicts n1 from the cache */
	cr_assert(same_file(fd1, f1), "still open while referenced");
	cr_assert(same_file(fd2, f2));
	fdt_put(w.b, fd1);
	cr_assert_eq(fcntl(fd1, F_GETFD), -1, "closed by the last put");
	cr_assert_eq(errno, EBADF);
	/* n2 stays cached: the next get is the same descriptor. */
	fdt_put(w.b, fd2);
	cr_assert_eq(fdt_node_get(w.b, n2, &fd1), 0);
	cr_assert_eq(fd1, fd2);
	fdt_put(w.b, fd1);
	two_fini(&w);
}

Test(fdtable, get_checks_ids_and_prefers_owned_and_root_descriptors)
{
	struct two w;
	int f1, fd;
	uint64_t n1;
	uint32_t owner;
	bool dead;

	two_init(&w, 4);
	n1 = owned_node(&w, 10, &f1);
	cr_assert_eq(fdt_node_get(w.a, n1, &fd), 0);
	cr_assert_eq(fd, f1, "the owner uses its own descriptor");
	fdt_put(w.a, fd);
	cr_assert_eq(fdt_node_get(w.b, NT_ROOT_ID, &fd), 0);
	cr_assert_eq(fd, w.root);
	fdt_put(w.b, fd);
	cr_assert_eq(fdt_node_get(w.b, 0, &fd), -ESTALE);
	cr_assert_eq(fdt_node_get(w.b, n1 + (1ull << NT_SLOT_BITS), &fd), -ESTALE);
	cr_assert_eq(fdt_fh_get(w.b, 5, &fd), -EBADF);
	/* Forgotten and dropped by the owner: stale everywhere. */
	cr_assert_eq(nt_node_forget(w.nt, n1, 1, &dead, &owner), 0);
	cr_assert(dead);
	fdt_node_drop(w.a, n1);
	cr_assert_eq(fcntl(f1, F_GETFD), -1);
	cr_assert_eq(fdt_node_get(w.b, n1, &fd), -ESTALE);
	two_fini(&w);
}

Test(fdtable, file_handles_are_shared_with_their_offset)
{
	struct two w;
	struct nt_fh fh;
	int file = memfile("abcdef"), fd;

	two_init(&w, 4);
	cr_assert_eq(nt_fh_alloc(w.nt, NT_ROOT_ID, 1, O_RDONLY, false, &fh), 0);
	cr_assert_eq(fdt_fh_install(w.a, fh.f_id, file), 0);
	cr_assert_eq(fdt_fh_get(w.b, fh.f_id, &fd), 0);
	cr_assert_neq(fd, file);
	cr_assert_eq(lseek(fd, 4, SEEK_SET), 4);
	cr_assert_eq(lseek(file, 0, SEEK_CUR), 4);
	fdt_put(w.b, fd);
	/* Released through the owner: the handle is gone. */
	fdt_fh_drop(w.b, fh.f_id);
	cr_assert_eq(peer_release_fh(w.pb, 1, fh.f_id), 0);
	struct stale_arg sa = {w.nt, fh.f_id};
	uint64_t end = bh_now_ns() + 3000000000ull;
	struct nt_fh g;
	while (nt_fh_get(sa.nt, sa.id, &g) == 0 && bh_now_ns() < end)
		usleep(2000);
	cr_assert_eq(nt_fh_get(w.nt, fh.f_id, &g), -EBADF);
	while (fcntl(file, F_GETFD) != -1 && bh_now_ns() < end)
		usleep(2000);
	cr_assert_eq(fcntl(file, F_GETFD), -1, "the owner closed its descriptor");
	two_fini(&w);
}

Test(fdtable, offer_caches_only_while_there_is_room)
{
	struct two w;
	int f1, f2, o1, o2, fd;
	uint64_t n1, n2;

	two_init(&w, 1);
	n1 = owned_node(&w, 10, &f1);
	n2 = owned_node(&w, 11, &f2);
	o1 = fcntl(f1, F_DUPFD_CLOEXEC, 0);
	o2 = fcntl(f2, F_DUPFD_CLOEXEC, 0);
	fdt_node_offer(w.b, n1, o1);
	fdt_node_offer(w.b, n2, o2);
	cr_assert_eq(fcntl(o2, F_GETFD), -1, "no room: closed");
	cr_assert_eq(fdt_node_get(w.b, n1, &fd), 0);
	cr_assert_eq(fd, o1, "the offered descriptor is used");
	fdt_put(w.b, fd);
	two_fini(&w);
}

Test(fdtable, session_reset_closes_everything_but_the_root)
{
	struct two w;
	int f1, fd, cached;
	uint64_t n1;

	two_init(&w, 4);
	n1 = owned_node(&w, 10, &f1);
	cr_assert_eq(fdt_node_get(w.b, n1, &cached), 0);
	fdt_put(w.b, cached);
	nt_reset(w.nt);
	/* Each table notices the new epoch on its next use. */
	cr_assert_eq(fdt_node_get(w.b, NT_ROOT_ID, &fd), 0);
	fdt_put(w.b, fd);
	cr_assert_eq(fcntl(cached, F_GETFD), -1);
	cr_assert_eq(fdt_node_get(w.a, n1, &fd), -ESTALE);
	cr_assert_eq(fcntl(f1, F_GETFD), -1);
	cr_assert_geq(fcntl(w.root, F_GETFD), 0);
	two_fini(&w);
}

Test(fdtable, provider_dups_only_owned_descriptors)
{
	struct two w;
	int f1, fd;
	uint64_t n1;

	two_init(&w, 4);
	n1 = owned_node(&w, 10, &f1);
	fd = fdt_provide_node_fd(w.a, n1);
	cr_assert_geq(fd, 0);
	cr_assert_neq(fd, f1);
	cr_assert(same_file(fd, f1));
	close(fd);
	cr_assert_eq(fdt_provide_node_fd(w.b, n1), -ESTALE, "B does not own it");
	cr_assert_eq(fdt_provide_node_fd(w.a, n1 + (1ull << NT_SLOT_BITS)), -ESTALE);
	cr_assert_eq(fdt_provide_fh_fd(w.a, 3), -EBADF);
	two_fini(&w);
}
