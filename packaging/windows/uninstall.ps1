<#
.SYNOPSIS
    Removes the Nexero Showroom service and program. The data (database, settings, logs, backups)
    is kept unless -DeleteData is given.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File .\uninstall.ps1
.EXAMPLE
    powershell -ExecutionPolicy Bypass -File .\uninstall.ps1 -DeleteData
#>
[CmdletBinding()]
param([switch]$DeleteData)
$ErrorActionPreference = 'Stop'

$identity = [Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()
if (-not $identity.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    throw 'Run this script from a PowerShell window opened with "Run as administrator".'
}

$InstallDir = Join-Path $env:ProgramFiles 'Nexero'
$Target = Join-Path $InstallDir 'nexero.exe'
if (-not (Test-Path -LiteralPath $Target)) {
    throw "$Target not found: Nexero Showroom is not installed with install.ps1 (or was removed already)."
}

# Stops the service gracefully, waits until Windows has removed it, removes the Event Log source
# and the firewall rule.
$arguments = @('service', 'uninstall')
if ($DeleteData) { $arguments += '--delete-data' }
& $Target @arguments
if ($LASTEXITCODE -ne 0) { throw "`"nexero $($arguments -join ' ')`" failed (exit code $LASTEXITCODE); see the message above." }

# The service's process may take a moment to release the program file.
for ($try = 1; ; $try++) {
    try { Remove-Item -LiteralPath $InstallDir -Recurse -Force; break }
    catch { if ($try -ge 15) { throw "Cannot remove $InstallDir ($_). Delete it by hand." }; Start-Sleep -Seconds 1 }
}
Write-Host "Removed $InstallDir"
