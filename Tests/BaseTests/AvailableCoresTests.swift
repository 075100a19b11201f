import Foundation
import XCTest
@testable import Base

/// `Threads.available` (issue 40): the cores this process may use, from its affinity mask and its cgroup's CPU quota.
final class AvailableCoresTests: XCTestCase {
    func testQuotaFilesAreReadAsWholeCPUsRoundedUp() {
        XCTAssertEqual(Threads.cpuMax("150000 100000\n"), 2)
        XCTAssertEqual(Threads.cpuMax("400000 100000"), 4)
        XCTAssertEqual(Threads.cpuMax("50000 100000"), 1)
        XCTAssertNil(Threads.cpuMax("max 100000\n"))
        XCTAssertNil(Threads.cpuMax(nil))
        XCTAssertEqual(Threads.cfsQuota(quota: "250000\n", period: "100000\n"), 3)
        XCTAssertNil(Threads.cfsQuota(quota: "-1\n", period: "100000\n"))
    }

    /// A cgroup tree laid out as the kernel mounts it: the tightest quota along the process's path counts, v2 and v1.
    func testTheTightestQuotaAlongTheCgroupPathCounts() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        func write(_ path: String, _ text: String) throws {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        // v2: the job's own folder has no quota, its parent 3 CPUs, the root none
        try write("cpu.max", "max 100000\n")
        try write("slurm/cpu.max", "300000 100000\n")
        try write("slurm/job_7/cpu.max", "max 100000\n")
        XCTAssertEqual(Threads.cgroupQuota(root: root.path, membership: "0::/slurm/job_7\n"), 3)
        XCTAssertNil(Threads.cgroupQuota(root: root.path, membership: "0::/\n"))
        // v1: the cpu controller's hierarchy, mounted as cpu,cpuacct
        try write("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n")
        try write("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
        try write("cpu,cpuacct/docker/cpu.cfs_quota_us", "-1\n")
        try write("cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n")
        XCTAssertEqual(Threads.cgroupQuota(root: root.path, membership: "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"), 2)
        XCTAssertNil(Threads.cgroupQuota(root: root.path, membership: "4:memory:/docker/abc\n"))
    }

    func testThisProcessGetsBetweenOneAndTheMachinesCount() {
        XCTAssertGreaterThanOrEqual(Threads.available, 1)
        XCTAssertLessThanOrEqual(Threads.available, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// `--jobs N`: the workers' shares are about cores / N, at least 1 each, and sum to the cores when there are enough.
    func testJobSharesSplitTheCores() {
        for cores in 1...20 {
            for jobs in 1...8 {
                let shares = (0..<jobs).map { Threads.share(of: cores, jobs: jobs, worker: $0) }
                XCTAssertTrue(shares.allSatisfy { $0 >= 1 && $0 <= max(1, (cores + jobs - 1) / jobs) }, "\(cores) cores, \(jobs) jobs: \(shares)")
                if cores >= jobs { XCTAssertEqual(shares.reduce(0, +), cores, "\(cores) cores, \(jobs) jobs: \(shares)") }
            }
        }
    }
}
