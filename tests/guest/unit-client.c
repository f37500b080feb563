/*
 * unit-client.c - a front end for the systemd guest test: connects to a
 * vhost-user socket the way QEMU does (the test front end, vufe), starts
 * two queues, FUSE INIT, and does what it is told, printing one
 * "BH-CLIENT ..." line per step:
 *   unit-client SOCKET [--read NAME] [--mkdir NAME] [--hold SECONDS]
 * --read: LOOKUP and READ the file NAME at the root, its first line printed;
 * --mkdir: MKDIR NAME at the root; --hold: stay connected that long before
 * leaving. Exit status 0 if every step worked.
 * Runs in: the systemd guest, as root.
 */
#include "config.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vufe.h"

static int uc_read(struct vufe *fe, const char *name)
{
	struct fuse_entry_out e;
	char buf[256];
	uint64_t fh;
	uint32_t len = 0;
	int r;

	if ((r = vufe_fuse_lookup(fe, 1, 1, name, &e)) != 0 ||
	    (r = vufe_fuse_open(fe, 1, e.nodeid, 0, &fh)) != 0 ||
	    (r = vufe_fuse_read(fe, 1, e.nodeid, fh, 0, sizeof(buf) - 1, buf, &len, 0)) != 0) {
		printf("BH-CLIENT read %s failed: %d\n", name, r);
		return -1;
	}
	buf[len] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	printf("BH-CLIENT read %s: %s\n", name, buf);
	return vufe_fuse_release(fe, 1, FUSE_RELEASE, e.nodeid, fh) == 0 ? 0 : -1;
}

static int uc_mkdir(struct vufe *fe, const char *name)
{
	struct fuse_mkdir_in in = {.mode = 0755, .umask = 022};
	struct fuse_entry_out e;
	uint32_t len = 0;
	int r;

	r = vufe_fuse(fe, 1, FUSE_MKDIR, 1, &in, sizeof(in), name, strlen(name) + 1, &e, sizeof(e),
		      &len, 0);
	printf("BH-CLIENT mkdir %s: %d\n", name, r);
	return r == 0 ? 0 : -1;
}

int main(int argc, char *argv[])
{
	struct vufe_opts o;
	struct fuse_init_out init;
	struct vufe *fe;
	int rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: unit-client SOCKET [--read NAME] [--mkdir NAME] "
				"[--hold SECONDS]\n");
		return 2;
	}
	vufe_opts_default(&o);
	o.nqueues = 2;
	if (!(fe = vufe_new(&o)) || vufe_connect(fe, argv[1], 20000) != 0 || vufe_up(fe) != 0 ||
	    vufe_fuse_init(fe, 1, &init) != 0) {
		printf("BH-CLIENT connect %s failed\n", argv[1]);
		return 1;
	}
	printf("BH-CLIENT init %s: FUSE %u.%u\n", argv[1], init.major, init.minor);
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--read") == 0)
			rc |= uc_read(fe, argv[i + 1]);
		else if (strcmp(argv[i], "--mkdir") == 0)
			rc |= uc_mkdir(fe, argv[i + 1]);
		else if (strcmp(argv[i], "--hold") == 0) {
			fflush(stdout);
			sleep((unsigned)atoi(argv[i + 1]));
		} else {
			printf("BH-CLIENT unknown argument %s\n", argv[i]);
			rc = -1;
		}
	}
	vufe_free(fe);
	return rc == 0 ? 0 : 1;
}
