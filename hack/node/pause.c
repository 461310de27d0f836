/*
 * The local cluster's pod sandbox process (containerd's sandbox_image): it holds the pod's
 * namespaces open until the pod goes. As PID 1 of the pod it reaps children other containers of
 * the pod leave behind (shared PID namespace), and it exits on SIGTERM or SIGINT so a pod stop
 * does not wait for the kill grace period. Every other signal stays blocked.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

int main(void) {
  sigset_t all, wanted;
  sigfillset(&all);
  if (sigprocmask(SIG_BLOCK, &all, NULL) != 0) {
    perror("pause: sigprocmask");
    return 1;
  }
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGTERM);
  sigaddset(&wanted, SIGINT);
  sigaddset(&wanted, SIGCHLD);
  for (;;) {
    int sig = sigwaitinfo(&wanted, NULL);
    if (sig == SIGTERM || sig == SIGINT) return 0;
    if (sig == SIGCHLD) {
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
    }
  }
}
