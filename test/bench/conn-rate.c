// New TCP connections per second, for the datapath benchmark (test/bench/conn-rate.ts builds and
// runs it inside the pods' netns). Node's per-connection overhead would hide the cost of the new-
// flow path being measured, so both ends are small blocking loops in separate processes.
//
//   conn-rate serve <ip> <port> <workers>
//     accepts on ip:port in `workers` processes; per connection: read one byte, send it back,
//     wait for the client's close, close. Prints "listening" once bound; runs until killed.
//   conn-rate connect <ip> <port> <seconds> <limit> <workers>
//     `workers` processes each connect, send one byte, read it back, close, in a loop, until
//     `seconds` pass or the workers together completed `limit` connections. Prints one JSON line:
//     {"completed":N,"failed":N,"elapsed_ms":N,"first_error":"..."}.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int parse_count(const char *arg, const char *what, long max)
{
	char *end;
	long n = strtol(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || n < 1 || n > max) {
		fprintf(stderr, "conn-rate: %s must be an integer 1..%ld, got '%s'\n", what, max, arg);
		exit(2);
	}
	return (int)n;
}

static struct sockaddr_in parse_addr(const char *ip, const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(parse_count(port, "port", 65535)) };

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		fprintf(stderr, "conn-rate: '%s' is not an IPv4 address\n", ip);
		exit(2);
	}
	return sa;
}

/* Workers die with the process that started them, so killing it stops them all. */
static pid_t fork_worker(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0) {
		perror("conn-rate: fork");
		exit(1);
	}
	if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
		_exit(1);
	return pid;
}

static void serve_connections(int listener)
{
	for (;;) {
		char byte, rest;
		int fd = accept(listener, NULL, NULL);

		if (fd < 0)
			continue;
		if (read(fd, &byte, 1) == 1 && write(fd, &byte, 1) == 1)
			while (read(fd, &rest, 1) > 0)
				;
		close(fd);
	}
}

static int serve(int argc, char **argv)
{
	struct sockaddr_in sa;
	int one = 1, listener, workers;

	if (argc != 5) {
		fprintf(stderr, "usage: conn-rate serve <ip> <port> <workers>\n");
		return 2;
	}
	sa = parse_addr(argv[2], argv[3]);
	workers = parse_count(argv[4], "workers", MAX_WORKERS);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(listener, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(listener, 4096) != 0) {
		fprintf(stderr, "conn-rate: listen on %s:%s: %s\n", argv[2], argv[3], strerror(errno));
		return 1;
	}
	for (int i = 1; i < workers; i++)
		if (fork_worker() == 0)
			serve_connections(listener);
	printf("listening\n");
	fflush(stdout);
	serve_connections(listener);
	return 0;
}

struct tally {
	long completed;
	long failed;
	int first_errno;
};

/* One connection; returns 0 or the errno that ended it (EPROTO: the byte did not come back). */
static int one_connection(const struct sockaddr_in *sa, char byte)
{
	char echoed = 0;
	int one = 1, err = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 || write(fd, &byte, 1) != 1)
		err = errno;
	else if (read(fd, &echoed, 1) != 1 || echoed != byte)
		err = errno ? errno : EPROTO;
	close(fd);
	return err;
}

static struct tally connect_loop(const struct sockaddr_in *sa, double deadline, long limit)
{
	struct tally t = { 0 };

	while (t.completed + t.failed < limit && now_ms() < deadline) {
		int err;

		errno = 0;
		err = one_connection(sa, (char)('a' + (t.completed % 26)));
		if (err == 0) {
			t.completed++;
		} else {
			t.failed++;
			if (t.first_errno == 0)
				t.first_errno = err;
		}
	}
	return t;
}

static int connect_main(int argc, char **argv)
{
	struct sockaddr_in sa;
	int seconds, limit, workers, fds[2];
	struct tally sum = { 0 };
	double start, deadline;

	if (argc != 7) {
		fprintf(stderr, "usage: conn-rate connect <ip> <port> <seconds> <limit> <workers>\n");
		return 2;
	}
	sa = parse_addr(argv[2], argv[3]);
	seconds = parse_count(argv[4], "seconds", 3600);
	limit = parse_count(argv[5], "limit", 10000000);
	workers = parse_count(argv[6], "workers", MAX_WORKERS);
	if (pipe(fds) != 0) {
		perror("conn-rate: pipe");
		return 1;
	}
	start = now_ms();
	deadline = start + seconds * 1e3;
	for (int i = 0; i < workers; i++) {
		if (fork_worker() == 0) {
			struct tally t = connect_loop(&sa, deadline, limit / workers + (i < limit % workers));

			_exit(write(fds[1], &t, sizeof(t)) == sizeof(t) ? 0 : 1);
		}
	}
	close(fds[1]);
	for (int i = 0; i < workers; i++) {
		struct tally t;

		if (read(fds[0], &t, sizeof(t)) != sizeof(t)) {
			fprintf(stderr, "conn-rate: worker %d reported nothing\n", i);
			return 1;
		}
		sum.completed += t.completed;
		sum.failed += t.failed;
		if (sum.first_errno == 0)
			sum.first_errno = t.first_errno;
	}
	while (wait(NULL) > 0)
		;
	printf("{\"completed\":%ld,\"failed\":%ld,\"elapsed_ms\":%.1f,\"first_error\":\"%s\"}\n", sum.completed, sum.failed,
	       now_ms() - start, sum.first_errno ? strerror(sum.first_errno) : "");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "connect") == 0)
		return connect_main(argc, argv);
	fprintf(stderr, "usage: conn-rate serve|connect ...\n");
	return 2;
}
