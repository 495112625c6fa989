// Whether a process's TCP connection is moving, read from /proc: the kernel's send queue of its
// established sockets (bytes written and not yet acknowledged). rtmp2sink queues without bound, so
// what the process takes in says nothing, and gst-launch cannot show rtmp2sink's own byte count
// (the reference watches that). A server that stops reading closes its window: the queue fills to
// the socket's buffer and stays exactly there.

/** Send queue (bytes) of every established TCP socket on this host, by inode. */
export function establishedSendQueues(read: (path: string) => string): Map<number, number> {
  const queues = new Map<number, number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = read(file);
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '01') continue;
      queues.set(Number(f[9]), parseInt(f[4]!.split(':')[0]!, 16));
    }
  }
  return queues;
}

/** The socket inodes a process has open. */
export function socketInodes(pid: number, list: (dir: string) => string[], link: (path: string) => string): number[] {
  const inodes: number[] = [];
  let fds: string[];
  try {
    fds = list(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(link(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.push(Number(m[1]));
    } catch {
      // closed between the listing and the read
    }
  }
  return inodes;
}

/** The summed send queue of a process's established TCP sockets; undefined when it has none. */
export function sendQueueOf(inodes: number[], queues: Map<number, number>): number | undefined {
  let total: number | undefined;
  for (const i of inodes) {
    const q = queues.get(i);
    if (q !== undefined) total = (total ?? 0) + q;
  }
  return total;
}
