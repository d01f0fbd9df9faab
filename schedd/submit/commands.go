package submit

import (
	"sort"
	"strings"
)

// vmCommands are the submit commands vmpool interprets (lower case).
var vmCommands = words(`
universe executable initialdir initial_dir
vm_type vm_memory vm_vcpus vm_macaddr vm_vnc vm_networking vm_networking_type
vm_checkpoint vm_checkpoint_interval vm_no_output_vm vm_disk
xen_kernel xen_initrd xen_root xen_kernel_params xen_transfer_files
vmware_dir vmware_should_transfer_files vmware_snapshot_disk
log transfer_input_files should_transfer_files when_to_transfer_output transfer_executable
request_memory request_cpus request_disk requirements rank
notification notify_user hold priority job_lease_duration
periodic_hold periodic_hold_reason periodic_hold_subcode periodic_release periodic_release_reason
periodic_remove periodic_remove_reason periodic_vacate
on_exit_hold on_exit_hold_reason on_exit_hold_subcode on_exit_remove leave_in_queue
batch_name description accounting_group accounting_group_user concurrency_limits
job_max_vacate_time submit_event_notes input output error
`)

// ignoredCommands are condor_submit commands that mean nothing for a vm
// universe job in vmpool; they are accepted with a warning.
var ignoredCommands = words(`
allowed_execute_duration allowed_job_duration arguments checkpoint_exit_code concurrency_limits_expr
container_image container_is_common container_service_names container_target_dir coresize
cron_day_of_month cron_day_of_week cron_hour cron_minute cron_month cron_prep_time cron_window
cuda_version dagman_log deferral_prep_time deferral_time deferral_window docker_image
docker_network_type docker_override_entrypoint docker_pull_policy dont_encrypt_input_files
dont_encrypt_output_files email_attributes encrypt_execute_directory encrypt_input_files
encrypt_output_files environment erase_output_and_error_on_restart getenv gpus_maximum_capability
gpus_minimum_capability gpus_minimum_memory gpus_minimum_runtime grid_resource hold_kill_sig
image_size jar_files java_vm_args job_ad_information_attrs job_machine_attrs
job_machine_attrs_history_length keep_claim_idle kill_sig kill_sig_timeout load_profile log_xml
machine_count manifest manifest_dir match_list_length max_idle max_job_retirement_time
max_materialize max_retries max_transfer_input_mb max_transfer_output_mb mount_under_scratch
next_job_start_delay nice_user noop_job noop_job_exit_code noop_job_exit_signal output_destination
output_directory preserve_relative_paths primary_unix_group public_input_files remote_initialdir
remove_kill_sig rendezvousdir request_gpus require_gpus retry_request_disk retry_request_memory
retry_request_memory_increase retry_request_memory_max retry_until run_as_owner scitokens_file shell
skip_filechecks skip_if_dataflow stack_size starter_debug starter_log stream_error stream_input
stream_output submit_event_notes_attrs submit_event_user_notes success_exit_code
transfer_checkpoint_files transfer_container transfer_error transfer_input transfer_output
transfer_output_files transfer_output_remaps transfer_plugins ulog_execute_attrs use_oauth_services
use_scitokens use_x509userproxy want_graceful_removal want_job_networking x509userproxy
`)

// attrAliases are job attribute names condor_submit also accepts as command
// names (submit_param's second name), mapped to the command.
var attrAliases = map[string]string{
	"jobvmtype": "vm_type", "jobvmmemory": "vm_memory", "jobvm_vcpus": "vm_vcpus",
	"jobvm_macaddr": "vm_macaddr", "jobvmcheckpoint": "vm_checkpoint", "jobvmnetworking": "vm_networking",
	"jobvmnetworkingtype": "vm_networking_type", "jobvmvncconsole": "vm_vnc",
	"vmparam_xen_kernel": "xen_kernel", "vmparam_xen_kernel_params": "xen_kernel_params",
	"vmparam_vmware_dir": "vmware_dir", "requestmemory": "request_memory", "requestcpus": "request_cpus",
	"requestdisk": "request_disk", "jobnotification": "notification", "notifyuser": "notify_user",
	"jobprio": "priority", "jobleaseduration": "job_lease_duration", "jobbatchname": "batch_name",
	"leavejobinqueue": "leave_in_queue", "shouldtransferfiles": "should_transfer_files",
	"whentotransferoutput": "when_to_transfer_output", "transferinputfiles": "transfer_input_files",
	"concurrencylimits": "concurrency_limits", "jobmaxvacatetime": "job_max_vacate_time",
}

// aliasesOf maps a command to the other names it may be given under, in a
// stable order; read-only after initialisation.
var aliasesOf = func() map[string][]string {
	m := map[string][]string{"initialdir": {"initial_dir"}}
	for alias, cmd := range attrAliases {
		m[cmd] = append(m[cmd], alias)
	}
	for _, v := range m {
		sort.Strings(v)
	}
	return m
}()

func words(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// knownCommand reports whether a lower-cased name is a submit command.
func knownCommand(n string) bool {
	return vmCommands[n] || ignoredCommands[n] || attrAliases[n] != ""
}

// suggestCandidates are the commands suggest may propose, interpreted ones
// first; read-only after initialisation.
var suggestCandidates = func() []string {
	var out []string
	for _, set := range []map[string]bool{vmCommands, ignoredCommands} {
		names := make([]string, 0, len(set))
		for c := range set {
			names = append(names, c)
		}
		sort.Strings(names)
		out = append(out, names...)
	}
	return out
}()

// suggest returns the submit command a misspelt name most likely meant, or
// "". Names of up to four letters may differ by one edit, longer ones by two.
func suggest(name string) string {
	n := strings.ToLower(name)
	limit := 2
	if len(n) <= 4 {
		limit = 1
	}
	best, bestD := "", limit+1
	for _, c := range suggestCandidates {
		if d := EditDistance(n, c, bestD); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD > limit || bestD == 0 {
		return ""
	}
	return best
}

// EditDistance is the Levenshtein distance of a and b, or a value >= bound
// once it is known to reach bound. (The CLI finds misspelt configuration
// knobs with it too.)
func EditDistance(a, b string, bound int) int {
	if d := len(a) - len(b); d >= bound || -d >= bound {
		return bound
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= bound {
			return bound
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
