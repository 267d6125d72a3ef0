"""keepalived keywords we recognise but do not act on (yet), so that using one is a
clear warning rather than an 'unknown keyword', and obsolete 1.x keywords.
"""

OBSOLETE: dict[str, str] = {
    "nat_mask": "keepalived 1.x, no longer used",
    "lvs_id": "keepalived 1.x, use router_id",
    "global_tracking": "replaced by sync_group_tracking_weight",
    "vrrp_garp_master_refresh_delay": "keepalived 1.x",
}

UNSUPPORTED: frozenset[str] = frozenset(
    """
    linkbeat_interfaces garp_group net_namespace
    net_namespace_ipvs namespace_with_ipsets instance use_pid_dir bfd_instance BFD_CHECK
    vrrp_ipsets vrrp_nftables vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force
    vrrp_netlink_monitor_rcv_bufs vrrp_netlink_monitor_rcv_bufs_force
    lvs_netlink_cmd_rcv_bufs lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
    lvs_netlink_monitor_rcv_bufs_force process_monitor_rcv_bufs
    process_monitor_rcv_bufs_force vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier vrrp_no_swap
    checker_no_swap bfd_priority bfd_no_swap vrrp_rt_priority checker_rt_priority
    bfd_rt_priority vrrp_rlimit_rttime checker_rlimit_rttime bfd_rlimit_rttime vrrp_cpu_affinity
    checker_cpu_affinity bfd_cpu_affinity snmp_socket enable_traps enable_snmp_vrrp
    enable_snmp_keepalived enable_snmp_checker enable_snmp_rfc enable_snmp_rfcv2
    enable_snmp_rfcv3 enable_dbus enable_dbus_instance dbus_service_name random_seed
    reload_check_config reload_time_file reload_repeat reload_file config_save_dir
    tmp_config_directory data_use_instance umask startup_script startup_script_timeout
    shutdown_script shutdown_script_timeout fifo_write_vrrp_states_on_reload
    no_checker_emails child_wait_time log_unknown_vrids vrrp_garp_extra_if
    vrrp_notify_priority_changes json_version local_name vrrp_owner_ignore_priority
    linkbeat_use_polling vrrp_track_process_interval
    kernel_rx_buf_size debug native_ipv6 track_src_ip track_bfd old_unicast_checksum
    notify_priority_changes unicast_checksum_compat vmac_xmit_base_src use_ipvlan
    evip
    """.split()
)
