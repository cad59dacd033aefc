<#
.SYNOPSIS
    Installs or upgrades Nexero Showroom as a Windows service, in one step.

.DESCRIPTION
    Copies nexero.exe to "C:\Program Files\Nexero" and registers the "Nexero" service with
    `nexero service install`: automatic (delayed) start, runs as LocalSystem, restarts after a
    failure, logs to %ProgramData%\Nexero\logs and the Event Log. Then starts it and shows its status.

    Upgrade: run the same script next to the new nexero.exe. It stops the service (uploads in
    flight are answered, the database is closed cleanly), keeps the data directory and port the
    service had, installs the new program and starts it again. When the new version changes the
    database schema it first copies the database to <data directory>\backups\.

.PARAMETER Port
    TCP port for headsets and the dashboard. Default: 8000, or the installed service's port on an upgrade.

.PARAMETER DataDir
    Where the database, nexero.toml, logs and backups live. Default: %ProgramData%\Nexero, or the
    installed service's data directory on an upgrade.

.PARAMETER NoFirewall
    Do not add the Windows Firewall rule that lets headsets on private networks reach the port.

.PARAMETER Source
    The nexero.exe to install. Default: the one next to this script.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File .\install.ps1
#>
[CmdletBinding()]
param(
    [int]$Port = 8000,
    [string]$DataDir = (Join-Path $env:ProgramData 'Nexero'),
    [switch]$NoFirewall,
    [string]$Source = (Join-Path $PSScriptRoot 'nexero.exe')
)
$ErrorActionPreference = 'Stop'

$identity = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $identity.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw 'Run this script from a PowerShell window opened with "Run as administrator".'
}
if (-not (Test-Path -LiteralPath $Source)) {
    throw "nexero.exe not found at $Source. Put install.ps1 next to nexero.exe, or pass -Source <path to nexero.exe>."
}

$InstallDir = Join-Path $env:ProgramFiles 'Nexero'
$Target = Join-Path $InstallDir 'nexero.exe'

function Invoke-Nexero([string[]]$Arguments) {
    & $Target @Arguments
    if ($LASTEXITCODE -ne 0) { throw "`"nexero $($Arguments -join ' ')`" failed (exit code $LASTEXITCODE); see the message above." }
}

if ((Get-Service -Name 'Nexero' -ErrorAction SilentlyContinue) -and (Test-Path -LiteralPath $Target)) {
    # Upgrade: keep the settings the installed service runs with unless new ones were given.
    $status = & $Target service status
    if (-not $PSBoundParameters.ContainsKey('DataDir')) {
        $m = $status | Select-String -Pattern '^data directory:\s*(.+)$'
        if ($m) { $DataDir = $m.Matches[0].Groups[1].Value.Trim() }
    }
    if (-not $PSBoundParameters.ContainsKey('Port')) {
        $m = $status | Select-String -Pattern '^port:\s*(\d+)'
        if ($m) { $Port = [int]$m.Matches[0].Groups[1].Value }
    }
    Write-Host 'Upgrading: stopping the service (it answers uploads in flight and closes the database cleanly)'
    Invoke-Nexero @('service', 'stop')
}

New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
# The stopped service's process may take a moment to release the file.
for ($try = 1; ; $try++) {
    try { Copy-Item -LiteralPath $Source -Destination $Target -Force; break }
    catch { if ($try -ge 15) { throw "Cannot replace $Target ($_). Close programs using it and run the script again." }; Start-Sleep -Seconds 1 }
}

$install = @('service', 'install', '--port', "$Port", '--data-dir', $DataDir)
if (-not $NoFirewall) { $install += '--firewall' }
Invoke-Nexero $install
Invoke-Nexero @('service', 'start')
Invoke-Nexero @('service', 'status')
Write-Host ''
Write-Host "Done. From another PC on this network open http://<this PC's IPv4 address>:$Port/health (run ipconfig to find the address)."
