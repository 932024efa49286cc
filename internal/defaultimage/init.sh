#!/bin/sh
# monostack-init: the default image's init, in the manner of cirros. It reads
# the config drive (mounted at /mnt/config by compute), sets the hostname,
# installs the keypair, runs the user data, then waits until told to stop.
PATH=/sbin:/bin:/usr/sbin:/usr/bin
HOME=/root
export PATH HOME
# PID 1 ignores signals it has no handler for: set it first, so that a stop
# right after boot is clean.
trap 'echo "monostack-init: stopping"; exit 0' TERM INT
cd /
md=/mnt/config/openstack/latest
[ -e /proc/self ] || mount -t proc proc /proc 2>/dev/null
if [ -f "$md/meta_data.json" ]; then
  name=$(sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' "$md/meta_data.json" | head -n 1)
  if [ -n "$name" ]; then
    hostname "$name" 2>/dev/null
    echo "$name" > /etc/hostname
  fi
  mkdir -p /root/.ssh && chmod 700 /root/.ssh
  grep -o '"ssh-[^"]*"' "$md/meta_data.json" | sed 's/^"//; s/"$//; s/\\n$//' > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi
echo "monostack-init: $(hostname) is up"
if [ -s "$md/user_data" ]; then
  if [ "$(head -c 2 "$md/user_data")" = "#!" ]; then
    cp "$md/user_data" /tmp/user-data && chmod 700 /tmp/user-data
    echo "monostack-init: running user data"
    /tmp/user-data
    echo "monostack-init: user data exited $?"
  else
    echo "monostack-init: user data is not a script; not run"
  fi
fi
while :; do
  sleep 3600 &
  wait $!
done
