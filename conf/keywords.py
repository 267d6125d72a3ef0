"""keepalived keywords we recognise but do not act on (yet), so that using one is a
clear warning rather than an 'unknown keyword', and obsolete 1.x keywords.
"""

OBSOLETE: dict[str, str] = {
    "nat_mask": "keepalived 1.x, no longer used",
    "lvs_id": "keepalived 1.x, use router_id",
    "global_tracking": "replaced by sync_group_tracking_weight",
    "vrrp_garp_master_refresh_delay": "keepalived 1.x",
    "lvs_sync_daemon_interface": "use global_defs lvs_sync_daemon",
    "thread_timer_expired": "use timer_expired_backup",
    "vmac_garp_intvl": "use garp_extra_if",
    "vrrp_vmac_garp_intvl": "use vrrp_garp_extra_if",
}

# parsed into the model, but nothing in director acts on them yet: warned by name
NO_EFFECT: frozenset[str] = frozenset(
    """
    ha_suspend max_auto_priority lower_prio_no_advert vrrp_lower_prio_no_advert
    garp_lower_prio_delay garp_lower_prio_repeat vrrp_garp_lower_prio_delay
    vrrp_garp_lower_prio_repeat notify_master_rx_lower_pri higher_prio_send_advert
    vrrp_higher_prio_send_advert vrrp_min_garp unicast_fault_no_peer
    """.split()
)

UNSUPPORTED: frozenset[str] = frozenset(
    """
    linkbeat_interfaces garp_group net_namespace
    net_namespace_ipvs namespace_with_ipsets instance use_pid_dir bfd_instance BFD_CHECK
    vrrp_ipsets vrrp_nftables vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force
    vrrp_netlink_monitor_rcv_bufs vrrp_netlink_monitor_rcv_bufs_force
    lvs_netlink_cmd_rcv_bufs lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
    lvs_netlink_monitor_rcv_bufs_force process_monitor_rcv_bufs
    process_monitor_rcv_bufs_force vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier
    bfd_priority bfd_no_swap bfd_rt_priority bfd_rlimit_rttime bfd_cpu_affinity
    snmp_socket enable_traps enable_snmp_vrrp
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
    active_key anti_replay auth_hmac bfd_process_name bfd_rlimit_rtime checker_process_name
    dbus_no_interface_name disable_local_igmp down_timer_adverts
    garp_extra_if hashed include_check interface_up_down_delays interfaces
    iproute_etc_dir iproute_usr_dir json_dump_file lvs_process_name mcast_dst_ip
    min_auto_priority_delay mode nftables_ipvs nftables_ipvs_priority
    nftables_ipvs_start_fwmark no_email_faults no_virtual_ipaddress owner_ignore_adverts
    process_name process_names regex_max_offset regex_min_offset regex_options regex_stack
    rs_init_notifies set_supplementary_groups snmp_name snmp_rs_stats_update_interval
    snmp_vs_stats_update_interval state_dump_file stats_dump_file time_window
    timer_expired_backup tls_compliant track_group use_symlink_paths use_vmac_addr
    v3_checksum_as_v2 vmac_addr_prefix vmac_prefix vrf vrrp_delay_after_boot
    vrrp_down_timer_adverts vrrp_owner_ignore_adverts vrrp_process_name
    """.split()
)

# the UNSUPPORTED keywords that take a block in keepalived, per enclosing block ('' the
# top level; True: a list block, alloc_value_block/read_value_block): one written
# without its '{' takes the lines up to the next '}' as its block, as a supported one
UNSUPPORTED_BLOCKS: dict[str, dict[str, bool]] = {
    "": {"garp_group": False, "bfd_instance": False, "track_group": False,
         "linkbeat_interfaces": True, "interface_up_down_delays": True},
    "vrrp_instance": {"auth_hmac": False, "track_bfd": True},
    "vrrp_sync_group": {"track_bfd": True},
    "real_server": {"BFD_CHECK": False},
    "garp_group": {"interfaces": True},
    "track_group": {"group": True},
}

# keywords whose handler checks for a missing value itself (logs and ignores the line)
# rather than making keepalived's parser exit
GRACEFUL_MISSING: frozenset[str] = frozenset(
    """
    default_interface helo_name http_protocol lvs_flush_on_stop lvs_flush_onstop
    lvs_sync_daemon max_auto_priority name notification_email_from param_match payload
    persistence_timeout require_reply router_id script_user user virtualhost weight
    """.split()
)

# director's own keywords (conf/BGP.md): keepalived does not know them and refuses a
# config that uses them (`bgp_speaker` and `bgp_announce` are "unknown keyword"s to it;
# the others live only inside bgp_speaker). tests/unit/test_keywords.py checks that none
# of them is a keepalived keyword, so a future keepalived keyword of the same name shows.
DIRECTOR_EXTENSIONS: frozenset[str] = frozenset(
    """
    bgp_speaker bgp_announce local_as neighbor remote_as hold_time bfd engine
    local_address passive withdraw_grace
    """.split()
)
