#!/bin/sh
# check-purity.sh LIB... — fails if the Raft core's object files reference
# any function that touches the world: files, sockets, clocks, randomness
# from the OS, threads, processes, or stdio. The core is a pure state machine
# (include/raft.h); this is the proof.
set -eu
forbidden='^(open|openat|close|read|write|pread|pwrite|fsync|fdatasync|lseek|unlink|rename|mkdir|fopen|fclose|fread|fwrite|fprintf|printf|puts|fputs|putchar|perror|socket|connect|bind|listen|accept|accept4|send|sendto|sendmsg|recv|recvfrom|recvmsg|poll|epoll_.*|select|time|clock_gettime|gettimeofday|clock|nanosleep|sleep|usleep|rand|random|srand|getrandom|arc4random.*|pthread_.*|fork|exec.*|system|getenv|syslog|abort|exit|_exit|signal|sigaction|mmap|munmap|ioctl|uv_.*|sqlite3_.*)$'
status=0
for lib in "$@"; do
  bad=$(nm -u "$lib" | awk '$1=="U"{print $2}' | sed 's/@.*//' | grep -E "$forbidden" | sort -u || true)
  if [ -n "$bad" ]; then
    echo "check-purity: $lib references forbidden symbols:" >&2
    echo "$bad" | sed 's/^/  /' >&2
    status=1
  fi
  allowed=$(nm -u "$lib" | awk '$1=="U"{print $2}' | sed 's/@.*//' | sort -u | tr '\n' ' ')
  echo "check-purity: $lib uses only: $allowed"
done
exit $status
